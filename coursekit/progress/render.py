"""Drawing a :class:`~coursekit.progress.model.CourseProgress` for people: the plain-text table
for a terminal, the HTML table for a notebook (the next exercise highlighted) and the bar chart
of each notebook's points (a matplotlib figure, or PNG bytes); nothing here checks anything.
"""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

from coursekit.progress.model import (
    FAIL,
    HIDDEN_GRADERS,
    NOT_RUN,
    NOT_STARTED,
    PASS,
    CourseProgress,
    _num,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def text_table(progress: CourseProgress) -> str:
    """:meth:`CourseProgress.text`: one block per notebook, the overall line and the next."""
    lines = []
    for nb in progress.notebooks:
        lines.append(
            f"{nb.assignment}/{nb.notebook}  {_num(nb.passing_points)}/"
            f"{_num(nb.points)} points  ({nb.title})"
        )
        if nb.problem:
            lines.append(f"    problem: {nb.problem}")
        for ex in nb.exercises:
            status = f"{ex.status}: {ex.detail}" if ex.detail else ex.status
            title = ex.title if len(ex.title) <= 40 else ex.title[:37] + "..."
            lines.append(f"  {ex.name:<22} {title:<40} {_num(ex.points):>3} pts  {status}")
            if ex.graded:
                lines.append(f"  {'':<22} {ex.graded}")
        for q in nb.questions:
            answered = "answered" if q.answered else "not answered"
            title = q.title if len(q.title) <= 40 else q.title[:37] + "..."
            lines.append(f"  {q.name:<22} {title:<40} {_num(q.points):>3} pts  written: {answered}")
    lines += [progress.overall_line(), progress.next_line(), HIDDEN_GRADERS]
    lines += [progress.graded_line()] if progress.grading else []
    return "\n".join(lines)


def html_table(progress: CourseProgress) -> str:
    """:meth:`CourseProgress.html`: the same table as HTML, the next exercise highlighted."""
    colors = {PASS: "#1a7f37", FAIL: "#cf222e", NOT_RUN: "#bc4c00", NOT_STARTED: "#6e7781"}
    nxt = progress.next[1] if progress.next else None
    rows = []
    for nb in progress.notebooks:
        rows.append(
            "<tr style='background:#f0f3f6'>"
            + _td(f"<b>{_h(nb.assignment)}/{_h(nb.notebook)}</b> {_h(nb.title)}", span=3)
            + _td(f"<b>{_num(nb.passing_points)} / {_num(nb.points)}</b>", "right")
            + _td(_h(nb.problem))
            + "</tr>"
        )
        for ex in nb.exercises:
            status = f"<span style='color:{colors[ex.status]}'>{_h(ex.status)}</span>"
            rows.append(
                ("<tr style='background:#fff8c5'>" if ex is nxt else "<tr>")
                + _td("&#9654;&nbsp;next" if ex is nxt else "")
                + _td(f"<code>{_h(ex.name)}</code>")
                + _td(_h(ex.title))
                + _td(_num(ex.points), "right")
                + _td(status + (": " + _h(ex.detail) if ex.detail else ""))
                + "</tr>"
            )
            if ex.graded:
                rows.append("<tr>" + _td("") * 2 + _td(f"<i>{_h(ex.graded)}</i>", span=3) + "</tr>")
        for q in nb.questions:
            answered = "answered" if q.answered else "not answered"
            rows.append(
                "<tr>"
                + _td("")
                + _td(f"<code>{_h(q.name)}</code>")
                + _td(_h(q.title))
                + _td(_num(q.points), "right")
                + _td(f"written question: {answered}")
                + "</tr>"
            )
    head = "".join(f"<th style='text-align:left'>{t}</th>" for t in ("", "exercise", ""))
    return (
        f"<table><thead><tr>{head}<th style='text-align:right'>points</th><th style="
        f"'text-align:left'>status</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p><b>{_h(progress.overall_line())}</b><br>{_h(progress.next_line())}<br>"
        f"{_h(HIDDEN_GRADERS)}<br>{_h(progress.graded_line())}</p>"
    )


def _h(text: str) -> str:
    return html.escape(text, quote=False)


def _td(content: str, align: str = "left", span: int = 1) -> str:
    """A table cell, aligned explicitly (JupyterLab right-aligns table cells)."""
    wrap = ";white-space:nowrap" if align == "right" else ""
    return f"<td colspan='{span}' style='text-align:{align}{wrap}'>{content}</td>"


def chart(progress: CourseProgress) -> Figure:
    """Horizontal bars per notebook: points whose visible tests pass, of all its points."""
    from matplotlib.figure import Figure

    nbs = progress.notebooks
    fig = Figure(figsize=(7, 0.8 + 0.32 * len(nbs)), layout="constrained")
    ax = fig.subplots()
    labels = [f"{nb.assignment}/{nb.notebook}" for nb in nbs]
    ax.barh(labels, [nb.points for nb in nbs], color="#d0d7de")
    ax.barh(labels, [nb.passing_points for nb in nbs], color="#2da44e")
    for y, nb in enumerate(nbs):
        ax.text(
            nb.points, y, f" {_num(nb.passing_points)}/{_num(nb.points)}", va="center", fontsize=8
        )
    ax.set_xlim(0, 1.15 * max([nb.points for nb in nbs] + [1.0]))
    ax.invert_yaxis()
    ax.tick_params(labelsize=8)
    ax.set_xlabel("points (green: visible tests pass)", fontsize=8)
    ax.set_title(
        f"Visible tests pass for {_num(progress.passing_points)} of {_num(progress.points)} points",
        fontsize=10,
    )
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
