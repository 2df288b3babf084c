"""Hidden graders of the course (one module per topic) and the harness that runs them.

``python -m autograder NOTEBOOK [--json]`` grades a notebook file. In a source notebook's
hidden-test block, ``grade("<topic>.<item>")`` marks the cell as graded by that item; the
grading itself runs outside the student's kernel (see ``autograder.grade``).
"""


def grade(item: str) -> None:
    """Marker of a graded test cell; the trusted grader reads it from the cell's source."""
    print(f"Hidden checks of {item!r} run when the notebook is autograded.")
