"""The evaluation's progress bars (rich): reference outputs (plus benchmarks, first run only) and samples.

Without a console every callback is a no-op, so library callers get no output.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from codestill.progress import RateColumn
from training._evalrun import SampleRecord


class EvalProgress:
    """``with EvalProgress(console) as bars:``; ``bars.truth(total)`` and ``bars.samples(total)`` each
    return the callback that advances their bar."""

    def __init__(self, console: Console | None) -> None:
        self._progress = None if console is None else Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=console)

    def __enter__(self) -> EvalProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def truth(self, total: int) -> Callable[[int], None]:
        progress = self._progress
        if progress is None:
            return lambda _: None
        task = progress.add_task("reference outputs", total=total, unit="inp")
        return lambda k: progress.advance(task, k)

    def samples(self, total: int) -> Callable[[SampleRecord | None], None]:
        progress = self._progress
        if progress is None:
            return lambda _: None
        task = progress.add_task("samples", total=total, unit="smp")
        counts = {"passed": 0, "done": 0, "skipped": 0}

        def advance(record: SampleRecord | None) -> None:
            counts["skipped" if record is None else "done"] += 1
            counts["passed"] += bool(record is not None and record.passed)
            skipped = f", {counts['skipped']} left for a rerun" if counts["skipped"] else ""
            progress.update(task, advance=1,
                            description=f"samples ({counts['passed']}/{counts['done']} passed{skipped})")

        return advance
