"""A process SIGKILLed mid-run leaves a readable store; its cut-off run reads as unfinished."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from codestill.errors import TraceStoreError
from codestill.traces import TraceStore

ROOT = Path(__file__).resolve().parents[3]
CHILD = """
import asyncio, sys
from codestill.traces import SqliteTracer
from tests.codestill.traces.graphs import build

tracer = SqliteTracer(sys.argv[1])
graph = build(slow_tester_s=600)
config = {"callbacks": [tracer], "metadata": {"task_id": "long-1"}}
asyncio.run(graph.ainvoke({"task": "long"}, config=config))
"""


def _wait_for_running_tester(store: Path, deadline: float) -> None:
    """Poll the store as a reader would while the writer is live, until the tester node has started."""
    last: Exception | None = None
    runs = []
    while time.monotonic() < deadline:
        try:
            with TraceStore(store) as traces:
                runs = traces.list_runs()
                names = {s.name: s.status for s in traces.tree(runs[0].id).walk()} if runs else {}
        except TraceStoreError as e:  # not created yet, or its schema not yet written
            last = e
            names = {}
        if names.get("tester") == "running":
            assert runs[0].status == "running"
            return
        time.sleep(0.05)
    raise AssertionError(f"the child never got to the tester node (last error: {last})")


def test_sigkill_mid_run_leaves_a_readable_store_with_the_run_unfinished(tmp_path):
    store = tmp_path / "traces.sqlite"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_running_tester(store, time.monotonic() + 60)
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()
    with TraceStore(store) as traces:
        [run] = traces.list_runs()
        tree = traces.tree(run.short_id)
    assert (run.task_id, run.status, run.duration_s, run.spans) == ("long-1", "unfinished", None, 7)
    status = {s.name: s.status for s in tree.walk()}
    assert status == {"solve": "unfinished", "planner": "ok", "FakeMessagesListChatModel": "ok",
                      "recall": "ok", "ModuleMemory": "ok", "normalise": "ok", "tester": "unfinished"}
