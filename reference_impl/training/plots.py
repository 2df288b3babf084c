"""A picture of a run: training and validation loss from ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def plot_losses(out_dir: str | Path) -> Path:
    """Write ``out_dir/loss.png`` from ``out_dir/metrics.jsonl``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [(r["iter"], r["loss"]) for r in records if "loss" in r]
    val = [(r["iter"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for points, label in ((train, "train"), (val, "validation")):
        if points:
            ax.plot(
                *zip(*points, strict=True),
                marker="o" if label == "validation" else None,
                label=label,
            )
    ax.set(xlabel="iteration", ylabel="cross-entropy (nats/token)", title=out.name)
    ax.legend()
    fig.tight_layout()
    path = out / "loss.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
