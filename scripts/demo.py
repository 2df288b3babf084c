"""The course's main job, end to end on a CPU (``make demo``):

1. generate the student release of the pilot assignment with nbgrader;
2. autograde a small bundled class (examples/sample_answers.py) with ``nbgrader autograde``
   and print each student's itemized score from the gradebook;
3. train the small reference model on the offline stories for a few minutes, then print
   the loss, a generated sample, and where the checkpoint, plot and TensorBoard logs are.

Everything goes under ``--out`` (default ``outputs/demo``); nothing in the repository changes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
import torch  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402

from coursekit.notebooks import grade_id, nbgrader_meta  # noqa: E402
from examples.sample_answers import SAMPLE_ANSWERS  # noqa: E402
from reference_impl.generation import generate, load_model  # noqa: E402
from reference_impl.training import load_experiment, train  # noqa: E402
from reference_impl.training.plots import plot_losses  # noqa: E402

ASSIGNMENT, NOTEBOOK = "part2_fundamentals", "attention"


def nbgrader(course: Path, *args: str) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("nbgrader")), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{result.stderr[-2000:]}")


def make_course(course: Path) -> None:
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(ROOT / name, course / name)
    shutil.copytree(ROOT / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")


def submit(course: Path) -> None:
    source = nbformat.read(str(course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), 4)
    solutions = {grade_id(c): c.source for c in source.cells if nbgrader_meta(c).get("solution")}
    for student, answers in SAMPLE_ANSWERS.items():
        nb = nbformat.read(str(course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), 4)
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid in answers:
                cell.source = answers[gid] or solutions[gid]
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{NOTEBOOK}.ipynb"))
        nbgrader(course, "db", "student", "add", student)


def report(course: Path) -> None:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in sorted(SAMPLE_ANSWERS):
            nb = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
            cells = ", ".join(
                f"{g.name} {g.auto_score:g}/{g.max_score:g}"
                for g in nb.grades
                if g.auto_score is not None
            )
            print(f"  {student:5s} {nb.score:5.1f} / {nb.max_score:g}   ({cells})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "demo")
    p.add_argument(
        "--iters", type=int, default=1000, help="training iterations (the schedule's length)"
    )
    p.add_argument("--config", default=str(ROOT / "configs" / "small_model.yaml"))
    args = p.parse_args()
    os.environ.setdefault("GW_FAST", "1")

    start = time.perf_counter()
    course = args.out / "course"
    print(f"1. nbgrader generate_assignment {ASSIGNMENT} -> {course / 'release'}")
    make_course(course)
    print(f"2. nbgrader autograde {ASSIGNMENT}: {len(SAMPLE_ANSWERS)} bundled submissions")
    submit(course)
    nbgrader(course, "autograde", ASSIGNMENT)
    report(course)
    print(
        f"   ({time.perf_counter() - start:.0f} s; feedback: run nbgrader generate_feedback "
        f"{ASSIGNMENT} in {course})"
    )

    exp = load_experiment(args.config)
    exp.train.max_iters = args.iters
    exp.data.data_dir = str(args.out / "data")
    run = args.out / "run"
    print(f"3. training {args.config} for {args.iters} iterations on the offline stories")
    t0 = time.perf_counter()
    result = train(exp, run, overwrite=True, log=lambda m: print("   " + m, flush=True))
    plot = plot_losses(run)
    model, tok, _ = load_model(run / "model.pt")
    prompt = torch.tensor([tok.encode("Once upon a time")])
    sample = generate(
        model, prompt, 200, temperature=0.8, top_k=40, generator=torch.Generator().manual_seed(0)
    )
    last = result.losses[max(result.losses)]
    print(
        f"   train loss {last:.3f}, validation loss {result.val_loss:.3f} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    print("   sample: " + tok.decode(sample[0].tolist()).replace("\n", "\n           "))
    print(f"   checkpoint {run / 'model.pt'}; loss plot {plot}; metrics {run / 'metrics.jsonl'}")
    print(f"   TensorBoard: tensorboard --logdir {run / 'tb'}")
    print(f"   chat: python scripts/chat.py --checkpoint {run / 'model.pt'}")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
