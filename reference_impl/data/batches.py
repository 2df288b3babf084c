"""Random training batches from one long stream of token ids."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def get_batch(
    data: Tensor | np.ndarray,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Inputs x and targets y, each (batch_size, block_size) int64, with y[:, t] = x[:, t+1].

    Windows start at uniformly random offsets of the 1-D ``data``: a tensor, or a numpy
    array such as a memory-mapped token file (only the sampled windows are read).
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 1 or len(data) <= block_size:
            raise ValueError(
                f"need a 1-D array of more than block_size={block_size} ids, got {data.shape}"
            )
        starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        windows = np.stack([data[s : s + block_size + 1] for s in starts.tolist()])
        both = torch.from_numpy(windows.astype(np.int64))
        return both[:, :-1], both[:, 1:]
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if len(data) <= block_size:
        raise ValueError(f"need more than block_size={block_size} tokens, got {len(data)}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + block_size] for s in starts.tolist()])
    y = torch.stack([data[s + 1 : s + 1 + block_size] for s in starts.tolist()])
    return x.long(), y.long()
