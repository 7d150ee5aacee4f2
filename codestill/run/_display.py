"""The live view of a batch: done / total with rate and ETA, accepted / rejected with the top rejection
reasons, tokens per second and the sandbox's load, redrawn a few times a second (rich ``Live``)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from codestill.progress import RateColumn
from codestill.run._ledger import Entry
from codestill.run._tally import Tally
from codestill.schemas import Trajectory


class BatchDisplay:
    def __init__(self, console: Console, total: int, done_before: int, title: str) -> None:
        self.console = console
        self.tally = Tally()
        self.sandbox: Any = None
        self.in_flight = 0
        self.note = ""
        self._t0 = time.monotonic()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  RateColumn("input"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self._task = self._progress.add_task(title, total=total, completed=done_before)
        self._live = Live(self, console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> BatchDisplay:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def start(self, _input_id: str) -> None:
        self.in_flight += 1

    def done(self, entry: Entry, trajectories: list[Trajectory]) -> None:
        self.in_flight -= 1
        self.tally.add(entry, trajectories)
        self._progress.advance(self._task)

    def _stats(self) -> Table:
        t, s = self.tally, self.tally.stages
        elapsed = max(1e-6, time.monotonic() - self._t0)
        grid = Table.grid(padding=(0, 2))
        reasons = ", ".join(f"{k} {v}" for k, v in t.rejections.most_common(3)) or "-"
        grid.add_row("[green]accepted[/]", str(s["accepted"]), "[red]rejected[/]", str(s["rejected"] + s["failed"]),
                     "top reasons", reasons)
        load = f"{self.sandbox.in_flight}/{self.sandbox.capacity}" if self.sandbox is not None else "-"
        grid.add_row("in flight", str(self.in_flight), "tokens/s", f"{t.tokens / elapsed:,.0f}", "sandbox busy", load)
        if t.eliminated or s["no_instruction"]:
            grid.add_row("instructions", str(s["instructions"]), "evolutions dropped", str(sum(t.eliminated.values())),
                         "seeds without", str(s["no_instruction"]))
        if self.note:
            grid.add_row("[yellow]" + self.note + "[/]")
        return grid

    def __rich__(self) -> Group:
        return Group(self._progress, self._stats())
