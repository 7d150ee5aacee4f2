"""Many graphs at once under one tracer (64 on one event loop; sync ones in threads): no span lost."""

from __future__ import annotations

import operator
import sqlite3
from collections import Counter
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from codestill.traces import SqliteTracer, TraceStore
from tests.codestill.traces.conftest import run_graphs
from tests.codestill.traces.graphs import SPANS_PER_RUN, chat_model

N = 64


class FanState(TypedDict):
    task: str
    replies: Annotated[list[str], operator.add]


def test_64_concurrent_graphs_lose_no_span(store):
    tasks = [f"task-{i:02d}" for i in range(N)]
    results = run_graphs(store, tasks)
    assert all(r["verdict"] == "accepted" for r in results)
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT id, trace_id, parent_id, kind, task_id, status FROM spans").fetchall()
    assert len(rows) == N * SPANS_PER_RUN
    ids = {r[0]: r for r in rows}
    roots = [r for r in rows if r[2] is None]
    assert len(roots) == N and sorted(r[4] for r in roots) == tasks
    for rid, trace, parent, _kind, task, status in rows:
        assert status == "ok"
        assert parent is None or parent in ids  # every parent link resolves
        assert ids[trace][2] is None and ids[trace][4] == task  # the trace is the root of the same task
        if parent is not None:
            assert ids[parent][1] == trace
        assert rid
    per_trace = Counter(r[1] for r in rows)
    assert set(per_trace.values()) == {SPANS_PER_RUN}
    assert Counter(r[3] for r in rows) == {"graph": N, "node": 3 * N, "llm": N, "retriever": N, "chain": N,
                                           "tool": N}
    with TraceStore(store) as traces:
        runs = traces.list_runs(limit=1000)
    assert len(runs) == N
    assert {r.spans for r in runs} == {SPANS_PER_RUN} and {r.status for r in runs} == {"ok"}


def test_sync_graphs_in_threads_with_parallel_branches_lose_no_span(store):
    """graph.batch runs graphs in a thread pool, and parallel branches run in threads too."""
    model = chat_model()

    def branch(name: str):  # a node: LangGraph passes the state by the parameter's name
        def node(state: FanState) -> dict[str, list[str]]:
            return {"replies": [f"{name}: {model.invoke(state['task']).content}"]}
        return node

    graph = StateGraph(FanState)
    for name in ("a", "b", "c", "d"):
        graph.add_node(name, branch(name))
        graph.add_edge(START, name)
        graph.add_edge(name, END)
    compiled = graph.compile(name="fan")
    with SqliteTracer(store) as tracer:
        results = compiled.batch([{"task": f"t{i}", "replies": []} for i in range(16)],
                                 config={"callbacks": [tracer], "max_concurrency": 8})
    assert all(len(r["replies"]) == 4 for r in results)
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT id, trace_id, parent_id, kind FROM spans").fetchall()
    ids = {r[0]: r for r in rows}
    assert len(rows) == 16 * (1 + 4 + 4)  # graph, 4 nodes, 4 LLM calls
    assert all(p is None or (p in ids and ids[p][1] == t) for _, t, p, _ in rows)
    assert Counter(r[3] for r in rows) == {"graph": 16, "node": 64, "llm": 64}
