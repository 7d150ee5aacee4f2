"""Suite-wide hooks. ``make test`` runs the type checker beside pytest (its CPU fills the time pytest
waits on containers and servers); this shows its report in pytest's summary, so the last line of the
run stays pytest's. ``make test`` fails when either does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    log = os.environ.get("CODESTILL_TYPECHECK_LOG")
    if not log:
        return
    done = Path(log + ".done")
    deadline = time.monotonic() + 600
    while not done.exists() and time.monotonic() < deadline:  # it ends long before pytest; never hang
        time.sleep(0.5)
    terminalreporter.section("type checker (basedpyright)")
    terminalreporter.write(Path(log).read_text() if Path(log).exists() else "no report\n")
