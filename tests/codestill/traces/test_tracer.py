"""The tracer on a real LangGraph run: tree shape, names, links, tokens, latency, errors, payloads."""

from __future__ import annotations

import asyncio
import sqlite3
import zlib
from typing import TypedDict

import pytest
from langchain_core.runnables import RunnableLambda
from langgraph.graph import START, StateGraph

from codestill.errors import TraceStoreError
from codestill.traces import SqliteTracer, TraceStore, _writer
from tests.codestill.traces.conftest import run_graphs
from tests.codestill.traces.graphs import COMPLETION_TOKENS, PROMPT_TOKENS, SPANS_PER_RUN, SYSTEM, build


class _Verdict(TypedDict, total=False):
    verdict: str


def test_one_run_is_one_tree_of_graph_nodes_and_calls(store):
    [result] = run_graphs(store, ["mbpp/2"])
    assert result["verdict"] == "accepted"
    with TraceStore(store) as traces:
        [run] = traces.list_runs()
        tree = traces.tree(run.id)
    assert (run.graph, run.task_id, run.status, run.verdict) == ("solve", "mbpp/2", "ok", "accepted")
    assert (run.spans, run.llm_calls, run.tokens) == (SPANS_PER_RUN, 1, PROMPT_TOKENS + COMPLETION_TOKENS)
    root = tree.root
    assert (root.kind, root.name, root.parent_id, root.trace_id) == ("graph", "solve", None, root.id)
    assert [(c.kind, c.name) for c in root.children] == [("node", "planner"), ("node", "recall"),
                                                           ("node", "tester")]
    planner, recall, tester = root.children
    assert [(c.kind, c.name, c.node) for c in planner.children] == [("llm", "FakeMessagesListChatModel",
                                                                       "planner")]
    assert [(c.kind, c.name) for c in recall.children] == [("retriever", "ModuleMemory"),
                                                             ("chain", "normalise")]
    assert [(c.kind, c.name) for c in tester.children] == [("tool", "sandbox.run")]
    spans = list(tree.walk())
    assert tree.spans == len(spans) == SPANS_PER_RUN
    assert all(s.trace_id == root.id and s.status == "ok" and s.task_id == "mbpp/2" for s in spans)
    for parent in spans:
        assert all(child.parent_id == parent.id for child in parent.children)


def test_llm_span_holds_prompt_reply_model_tokens_and_latency(store):
    run_graphs(store, ["t1"])
    with TraceStore(store) as traces:
        tree = traces.tree(traces.list_runs()[0].id)
    planner = tree.root.children[0]
    llm = planner.children[0]
    assert (llm.model, llm.prompt_tokens, llm.completion_tokens) == ("fake-planner", PROMPT_TOKENS,
                                                                     COMPLETION_TOKENS)
    [messages] = llm.inputs["messages"]
    assert messages == [{"role": "system", "content": SYSTEM}, {"role": "human", "content": "solve t1"}]
    assert llm.outputs["generations"][0]["content"] == "1. write add\n2. test it"
    assert llm.prompt_preview() == "solve t1"
    assert llm.response_preview() == "1. write add 2. test it"
    # Latency is end - start, and a child lies within its parent.
    assert llm.duration_s is not None and llm.end is not None and llm.duration_s >= 0
    assert planner.end is not None and tree.root.end is not None
    assert planner.start <= llm.start <= llm.end <= planner.end <= tree.root.end
    tool = tree.root.children[2].children[0]
    assert tool.inputs == {"program": "def add(a, b):\n    return a + b\ndef mul(a, b):\n    return a * b"}
    assert tool.outputs == {"output": "passed: 63 bytes"}
    retriever = tree.root.children[1].children[0]
    assert retriever.outputs["documents"][0]["metadata"] == {"score": 0.9}


def test_a_node_that_raises_marks_its_span_and_ancestors_error(store):
    [error] = run_graphs(store, ["bad"], graph=build(fail_in_tester="no tests collected"))
    assert isinstance(error, ValueError)
    with TraceStore(store) as traces:
        [run] = traces.list_runs()
        tree = traces.tree(run.id)
    assert run.status == "error" and run.verdict is None
    planner, recall, tester = tree.root.children
    assert (planner.status, recall.status, tester.status) == ("ok", "ok", "error")
    assert tester.error == "ValueError: no tests collected"
    assert "Traceback" in tester.outputs["traceback"] and "no tests collected" in tester.outputs["traceback"]
    assert tester.children[0].status == "ok"  # the tool call before the raise succeeded
    assert tree.root.error == "ValueError: no tests collected"


def test_secrets_are_redacted_everywhere_even_inside_compressed_payloads(store):
    secret = "sk-proj-Zq8x\"quoted\\Secret-0123456789"
    big = "x = 1\n" * 2000  # makes the node payloads compress
    run_graphs(store, [f"leak {secret}"], redact=[secret], state={"blob": f"{big} key={secret}"},
               graph=build(fail_in_tester=f"auth failed for {secret}"))
    raw = b"".join(p.read_bytes() for p in store.parent.iterdir())
    with sqlite3.connect(store) as conn:
        blobs = [b for row in conn.execute("SELECT inputs, outputs, extra FROM spans") for b in row if b]
        texts = " ".join(str(v) for row in conn.execute("SELECT * FROM spans") for v in row)
    assert any(b[:1] == b"z" for b in blobs)
    plain = b"".join(zlib.decompress(b[1:]) if b[:1] == b"z" else b[1:] for b in blobs)
    for form in (secret.encode(), b'sk-proj-Zq8x\\"quoted\\\\Secret-0123456789'):
        assert form not in raw and form not in plain
    assert secret not in texts
    assert b"[redacted]" in plain and "auth failed for [redacted]" in texts
    with TraceStore(store) as traces:
        tree = traces.tree(traces.list_runs()[0].id)
    assert tree.root.task_id == "leak [redacted]"
    assert tree.root.inputs["blob"].endswith("key=[redacted]")


def test_a_big_payload_is_compressed_and_round_trips(store):
    code = "".join(f"def f{i}(x):\n    return x * {i}  # unique line {i}\n" for i in range(3000))
    run_graphs(store, ["big"], state={"blob": code})
    with sqlite3.connect(store) as conn:
        [(blob,)] = conn.execute("SELECT inputs FROM spans WHERE parent_id IS NULL").fetchall()
    assert blob[:1] == b"z" and len(blob) < len(code) / 3
    with TraceStore(store) as traces:
        tree = traces.tree(traces.list_runs()[0].id)
    assert tree.root.inputs["blob"] == code
    assert tree.root.outputs["blob"] == code
    assert tree.root.children[0].inputs["blob"] == code


def test_unencodable_state_and_a_broken_store_never_reach_the_graph(store):
    tracer = SqliteTracer(store)
    graph = build()
    state = {"task": "t", "blob": {"huge": 2**70, "self": object()}}
    assert asyncio.run(graph.ainvoke(state, config={"callbacks": [tracer]}))["verdict"] == "accepted"
    assert tracer.flush() and tracer.stats.errors >= 1  # the 2**70 cannot be JSON: stored as its repr
    with sqlite3.connect(store) as conn:  # now every write fails: the table is gone
        conn.execute("DROP TABLE spans")
    assert asyncio.run(graph.ainvoke(state, config={"callbacks": [tracer]}))["verdict"] == "accepted"
    assert tracer.flush()
    errors = tracer.stats.errors
    tracer.close()
    tracer.close()
    assert tracer.stats.errors == errors > 1


def test_events_after_close_are_counted_not_queued(store):
    tracer = SqliteTracer(store)
    tracer.close()
    asyncio.run(build().ainvoke({"task": "late"}, config={"callbacks": [tracer]}))
    assert tracer.stats.dropped == 2 * SPANS_PER_RUN and tracer.stats.pending == 0
    with TraceStore(store) as traces:
        assert traces.list_runs() == []


def test_bare_llm_call_is_a_root_run(store):
    from tests.codestill.traces.graphs import chat_model

    with SqliteTracer(store) as tracer:
        chat_model().invoke("hello", config={"callbacks": [tracer]})
    with TraceStore(store) as traces:
        [run] = traces.list_runs()
    assert (run.graph, run.llm_calls, run.spans, run.tokens) == ("FakeMessagesListChatModel", 1, 1, 59)


def test_missing_foreign_and_empty_files_are_one_clear_error(tmp_path):
    with pytest.raises(TraceStoreError, match=r"no trace store at .*; run a traced graph first"):
        TraceStore(tmp_path / "nope.sqlite")
    (tmp_path / "notes.txt").write_text("hello, not a database " * 100)
    for opener in (TraceStore, SqliteTracer):
        with pytest.raises(TraceStoreError, match="is not a codestill trace store"):
            opener(tmp_path / "notes.txt")
    with sqlite3.connect(tmp_path / "other.sqlite") as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    for opener in (TraceStore, SqliteTracer):
        with pytest.raises(TraceStoreError, match="an SQLite database but not a codestill trace store"):
            opener(tmp_path / "other.sqlite")
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(TraceStoreError, match="not a trace store yet"):
        TraceStore(tmp_path / "empty.sqlite")


def test_runs_resolve_by_id_prefix_or_short_id(store):
    run_graphs(store, ["a", "b"])
    with TraceStore(store) as traces:
        runs = traces.list_runs()
        first = runs[0]
        assert traces.resolve(first.id) == first.id
        assert traces.resolve(first.short_id) == first.id
        assert traces.resolve(first.id[:30]) == first.id
        with pytest.raises(TraceStoreError, match="matches several runs"):
            traces.resolve(first.id[:4])
        with pytest.raises(TraceStoreError, match="no run 'ffffffff'"):
            traces.resolve("ffffffff")
        with pytest.raises(TraceStoreError, match="is not a run id"):
            traces.resolve("DROP TABLE")
        # Any span id works too, and gives its subtree.
        tool = traces.tree(first.id).root.children[2].children[0]
        sub = traces.tree(tool.id)
        assert (sub.root.kind, sub.spans) == ("tool", 1)


@pytest.mark.parametrize("update_from", [True, False], ids=["update-from", "row-by-row"])
def test_a_span_is_running_until_its_end_updates_it(store, monkeypatch, update_from):
    """Flushing inside a node commits the open spans, so their ends take the UPDATE path."""
    monkeypatch.setattr(_writer, "_UPDATE_FROM", update_from)  # row-by-row: SQLite older than 3.33
    seen: dict[str, str] = {}
    tracer = SqliteTracer(store)

    def peek(state: _Verdict) -> dict:
        assert tracer.flush()
        with TraceStore(store) as traces:
            tree = traces.tree(traces.list_runs()[0].id)
        seen.update({s.name: s.status for s in tree.walk()})
        return {"verdict": "accepted"}

    graph = StateGraph(_Verdict)
    graph.add_node("peek", RunnableLambda(peek))
    graph.add_edge(START, "peek")
    with tracer:
        assert asyncio.run(graph.compile(name="p").ainvoke({}, config={"callbacks": [tracer]}))
    assert seen == {"p": "running", "peek": "running"}  # both runs named peek: the node and its lambda
    with TraceStore(store) as traces:
        [run] = traces.list_runs()
        tree = traces.tree(run.id)
    assert (run.status, run.verdict, run.spans) == ("ok", "accepted", 3)
    [node] = tree.root.children
    [inner] = node.children  # the RunnableLambda the node wraps, under the same name
    assert [(s.kind, s.name, s.status) for s in (node, inner)] == [("node", "peek", "ok"),
                                                                   ("chain", "peek", "ok")]
    assert node.outputs == inner.outputs == {"verdict": "accepted"}
