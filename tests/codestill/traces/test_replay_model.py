"""The replay chat model on its own: answers from a recording by node and request, stops on the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from codestill.schemas import ModuleSpec, Task
from codestill.traces import Span, SpanTree, TraceStore
from codestill.traces.replay import (
    RecordedCall,
    RecordedCallError,
    Recording,
    ReplayChatModel,
    ReplayError,
    ReplayMismatch,
)
from tests.codestill.traces.conftest import run_graphs

SYSTEM, ASK = "You are the codestill planner.", "Plan: add two numbers."


def _call(reply: str, *, error: str | None = None, node: str = "plan") -> RecordedCall:
    messages = ({"role": "system", "content": SYSTEM}, {"role": "human", "content": ASK})
    gens = ({"role": "ai", "content": reply, "response_metadata": {"finish_reason": "stop"}},)
    return RecordedCall(span_id="s", node=node, messages=messages, generations=gens, error=error,
                        prompt_tokens=11, completion_tokens=5, model="m")


def _recording(*calls: RecordedCall) -> Recording:
    now = datetime.now(UTC)
    root = Span(id="r", trace_id="r", parent_id=None, kind="graph", name="solve", node=None, task_id="t",
                status="ok", start=now, end=now, duration_s=0.0)
    return Recording(SpanTree(root=root, spans=1), Task(id="t", instruction="add"), calls, {}, [])


def _ask(model: ReplayChatModel, node: str, text: str = ASK) -> Any:
    return model.invoke([SystemMessage(SYSTEM), HumanMessage(text)], config={"metadata": {"langgraph_node": node}})


def test_identical_requests_get_the_recorded_replies_in_order_with_their_usage():
    model = ReplayChatModel(recording=_recording(_call("first"), _call("second")), role="planner")
    one, two = _ask(model, "plan"), _ask(model, "plan")
    assert (one.content, two.content) == ("first", "second")
    assert one.usage_metadata["input_tokens"] == 11 and one.response_metadata["finish_reason"] == "stop"
    with pytest.raises(ReplayMismatch, match="asked the same request 3 times, the recording answered it 2 times"):
        _ask(model, "plan")


def test_an_unrecorded_request_names_the_node_the_role_and_the_prompt():
    model = ReplayChatModel(recording=_recording(_call("first")), role="planner")
    with pytest.raises(ReplayMismatch) as caught:
        _ask(model, "plan", "Plan: add three numbers.")
    message = str(caught.value)
    assert "the planner at node 'plan' made an LLM call the recording lacks" in message
    assert "The unmatched prompt starts: 'Plan: add three numbers.'" in message and "first differs at" in message
    with pytest.raises(ReplayMismatch, match="The recording has no LLM call at node 'code'"):
        _ask(model, "code")  # the same request from another node is another call


def test_a_recorded_failure_fails_again_and_memory_searches_must_be_recorded():
    model = ReplayChatModel(recording=_recording(_call("", error="InternalServerError: 500")), role="coder")
    with pytest.raises(RecordedCallError, match="InternalServerError: 500"):
        _ask(model, "plan")
    spec = ModuleSpec(name="add", signature="def add(a, b)")
    with pytest.raises(ReplayMismatch, match="never searched for"):
        _recording().hits(spec)


def test_a_run_without_a_task_is_refused(tmp_path):
    store = tmp_path / "traces.sqlite"
    run_graphs(store, ["mbpp/11"])  # the test graph's task is a string, not a Task
    with TraceStore(store) as traces:
        tree = traces.tree(traces.list_runs()[0].id)
    with pytest.raises(ReplayError, match="is not a solve run with its task in the trace"):
        Recording.from_tree(tree)
