"""Progress-bar pieces shared by the commands and the benchmarks (rich)."""

from __future__ import annotations

from rich.progress import ProgressColumn, Task
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second as rich estimates it over the last few seconds, in a fixed width so the bar does
    not jump. A task's ``unit`` field (``add_task(..., unit="inp")``) overrides the column's unit."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = f"{speed:6.1f}" if speed else "     ?"
        return Text(f"{shown} {task.fields.get('unit', self.unit)}/s", style="progress.data.speed")
