"""The tolerant reply parser and the repair round, with LangChain's fake chat models (no HTTP here;
tests/codestill/test_llm_sim.py runs the same code over HTTP against the simulated teacher)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from codestill.schemas import Plan
from codestill.structured import SCHEMA_MARKER, ask, extract_code, extract_json, parse_reply


class Code(BaseModel):
    code: str
    explanation: str = ""


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1}', {"a": 1}),
    ('Sure! Here it is:\n```json\n{"a": [1, 2]}\n```\nDone.', {"a": [1, 2]}),
    ('The answer is {"a": {"b": "}"}} as requested.', {"a": {"b": "}"}}),
    ("first {broken then {\"a\": 2}", {"a": 2}),
    ("no json at all", None),
    ("", None),
])
def test_extract_json(text, expected):
    assert extract_json(text) == expected


def test_extract_code_takes_the_last_python_block():
    text = "x\n```json\n{}\n```\n```python\ndef f():\n    return 1\n```\nthen\n```py\ndef g(): pass\n```"
    assert extract_code(text) == "def g(): pass"
    assert extract_code("no fences") is None


def test_parse_reply_from_each_place():
    good = AIMessage("", tool_calls=[{"name": "Plan", "args": {"steps": ["a", "b"]}, "id": "1"}])
    assert parse_reply(good, Plan)[0] == Plan(steps=("a", "b"))
    broken = AIMessage("", invalid_tool_calls=[{"name": "Plan", "args": '{"steps": ["a"]} trailing', "id": "1",
                                               "error": "bad"}])
    assert parse_reply(broken, Plan)[0] == Plan(steps=("a",))
    fenced = AIMessage("Here:\n```python\ndef f():\n    return 1\n```")
    assert parse_reply(fenced, Code)[0] == Code(code="def f():\n    return 1")
    value, error, _ = parse_reply(AIMessage('{"steps": []}'), Plan)
    assert value is None and "steps" in error
    # A complete answer in a reply cut off at the token limit is an answer; an incomplete one is not.
    cut = AIMessage('{"steps": ["a"]}\nNow let me explain each step in det', response_metadata={"finish_reason": "length"})
    assert parse_reply(cut, Plan)[0] == Plan(steps=("a",))
    cut = AIMessage('{"steps": ["a", "b', response_metadata={"finish_reason": "length"})
    value, error, _ = parse_reply(cut, Plan)
    assert value is None and "cut off" in error


def test_repair_round_shows_the_model_its_error():
    model = FakeMessagesListChatModel(responses=[AIMessage("I think the plan is fine."),
                                                 AIMessage('{"steps": ["loop", "return"]}')])
    reply = asyncio.run(ask(model, [HumanMessage("plan it")], Plan, method="prompt"))
    assert reply.ok and reply.value == Plan(steps=("loop", "return")) and reply.tries == 2
    assert reply.usage.calls == 2


def test_a_reply_that_never_parses_is_a_recorded_failure():
    model = FakeMessagesListChatModel(responses=[AIMessage("nope"), AIMessage("still nope")])
    reply = asyncio.run(ask(model, [HumanMessage("plan it")], Plan, method="prompt", repair_rounds=1))
    assert not reply.ok and reply.value is None and reply.tries == 2
    assert reply.error == "no JSON object found in the reply" and reply.raw == "still nope"


def test_prompt_mode_puts_the_schema_in_the_prompt():
    seen: list = []

    class Spy(FakeMessagesListChatModel):
        async def _agenerate(self, messages, *a, **kw):
            seen.append(messages)
            return await super()._agenerate(messages, *a, **kw)

    asyncio.run(ask(Spy(responses=[AIMessage('{"steps": ["x"]}')]), [HumanMessage("q")], Plan, method="prompt"))
    shown = seen[0][-1].content
    assert SCHEMA_MARKER in shown and '"steps"' in shown
    # an example answer, not a JSON Schema: nothing a small model would copy back instead of answering
    assert "$defs" not in shown and '"properties"' not in shown and '"title"' not in shown
