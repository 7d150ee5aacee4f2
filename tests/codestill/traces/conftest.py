"""Run the test graph under a real SqliteTracer writing a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from codestill.traces import SqliteTracer
from tests.codestill.traces.graphs import build

RunGraphs = Callable[..., list[Any]]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "traces.sqlite"


def run_graphs(store: Path, tasks: Sequence[str], *, redact: Sequence[str] = (), graph: Any = None,
               state: dict[str, Any] | None = None) -> list[Any]:
    """Run one graph per task concurrently, each tagged with its task id; results or exceptions."""
    graph = graph or build()

    async def main(tracer: SqliteTracer) -> list[Any]:
        return await asyncio.gather(*(
            graph.ainvoke({"task": f"solve {task}", **(state or {})},
                          config={"callbacks": [tracer], "metadata": {"task_id": task}})
            for task in tasks), return_exceptions=True)

    with SqliteTracer(store, redact=redact) as tracer:
        results = asyncio.run(main(tracer))
        assert tracer.stats.errors == 0
    return results
