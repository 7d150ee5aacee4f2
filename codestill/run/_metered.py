"""A ``Sandbox`` that counts what goes through it: runs in flight (the batch display's sandbox load),
seconds per run summed, and busy time (wall time with any run in flight: the throughput benchmark's
measured sandbox time). It wraps any backend."""

from __future__ import annotations

import time
from dataclasses import dataclass

from codestill.ports import Sandbox
from codestill.schemas import ExecResult, Limits, TestSuite


@dataclass
class MeteredSandbox:
    inner: Sandbox
    capacity: int = 1
    in_flight: int = 0
    runs: int = 0
    seconds: float = 0.0
    busy_s: float = 0.0  # wall time with at least one run in flight
    _busy_since: float = 0.0

    async def run(self, program: str | bytes, tests: TestSuite | str, limits: Limits | None = None) -> ExecResult:
        start = time.perf_counter()
        if self.in_flight == 0:
            self._busy_since = start
        self.in_flight += 1
        try:
            return await self.inner.run(program, tests, limits)
        finally:
            end = time.perf_counter()
            self.in_flight -= 1
            self.runs += 1
            self.seconds += end - start
            if self.in_flight == 0:
                self.busy_s += end - self._busy_since

    @property
    def load(self) -> float:
        """Runs in flight per warm container: above 1, runs are queueing for the pool."""
        return self.in_flight / max(1, self.capacity)
