"""The OpenAI protocol as real clients speak it: models, errors, streaming, n, usage, structured output."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionToolParam
from pydantic import BaseModel, Field, SecretStr

from codestill.schemas import Critique, Plan
from codestill.sim import DESCRIPTION, OWNER, SCHEMA_MARKER, SimConfig, serve_subprocess

from .conftest import MODEL, messages, texts


def test_models_say_it_is_a_simulator(client, url):
    (card,) = client.models.list().data
    assert card.id == MODEL and card.owned_by == OWNER == "codestill-simulator"
    assert "not a language model" in card.model_extra["description"] == DESCRIPTION
    assert client.models.retrieve(MODEL).owned_by == OWNER
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_unknown_model_is_an_openai_404(client, url, bank):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=messages("coder", bank["mbpp/2"]))
    assert e.value.body == {"message": "The model `gpt-4o` does not exist", "type": "invalid_request_error",
                            "param": "model", "code": "model_not_found"}


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"model": "codestill-sim"}',
                                  b'{"model": "codestill-sim", "messages": [{"role": "user"}], "n": 0}'])
def test_malformed_bodies_are_openai_400s(url, body):
    r = httpx.post(f"{url}/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error" and r.json()["error"]["message"]


def test_usage_counts_about_four_characters_per_token(client, bank):
    msgs = messages("coder", bank["mbpp/2"])
    r = client.chat.completions.create(model=MODEL, messages=msgs)
    chars = sum(len(t) for t in texts("coder", bank["mbpp/2"]))
    assert r.usage.prompt_tokens == -(-chars // 4)
    assert r.usage.completion_tokens == -(-len(r.choices[0].message.content) // 4)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_max_tokens_cuts_the_reply_with_finish_reason_length(client, bank):
    r = client.chat.completions.create(model=MODEL, messages=messages("coder", bank["humaneval/10"]), max_tokens=10)
    assert r.choices[0].finish_reason == "length" and len(r.choices[0].message.content) == 40


def _stream_text(client, **kwargs) -> tuple[str, str, list]:
    chunks = list(client.chat.completions.create(model=MODEL, stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
    return text, finish, chunks


def test_a_streamed_text_reply_reassembles_to_the_plain_one(client, bank):
    msgs = messages("coder", bank["humaneval/10"])
    plain = client.chat.completions.create(model=MODEL, messages=msgs)
    text, finish, chunks = _stream_text(client, messages=msgs, stream_options={"include_usage": True})
    assert text == plain.choices[0].message.content and finish == "stop"
    assert len(chunks) > 3 and chunks[-1].choices == [] and chunks[-1].usage == plain.usage


TOOL: ChatCompletionToolParam = {"type": "function", "function": {"name": "submit_code", "parameters": {
    "type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}


def test_a_streamed_tool_call_reassembles_to_the_plain_one(client, bank):
    msgs = messages("coder", bank["mbpp/2"])
    plain = client.chat.completions.create(model=MODEL, messages=msgs, tools=[TOOL])
    (call,) = plain.choices[0].message.tool_calls
    assert call.function.name == "submit_code"
    assert json.loads(call.function.arguments) == {"code": bank["mbpp/2"].reference}
    chunks = list(client.chat.completions.create(model=MODEL, messages=msgs, tools=[TOOL], stream=True))
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id.startswith("call_") and deltas[0].function.name == "submit_code"
    assert "".join(d.function.arguments or "" for d in deltas) == call.function.arguments
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason == "tool_calls"


def test_n_choices_give_different_plans(client, bank):
    r = client.chat.completions.create(model=MODEL, messages=messages("planner", bank["humaneval/3"]), n=3,
                                       response_format={"type": "json_object"})
    plans = [json.loads(c.message.content) for c in r.choices]
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len({tuple(p["steps"]) for p in plans}) == 3
    streamed = list(client.chat.completions.create(model=MODEL, messages=messages("planner", bank["humaneval/3"]),
                                                   n=3, stream=True, response_format={"type": "json_object"}))
    for i, plan in enumerate(plans):
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices and c.choices[0].index == i)
        assert json.loads(text) == plan


class Answer(BaseModel):
    """A structured reply with a nested record and a field the simulator does not know."""

    plan: Plan | None = None
    steps: list[str] = Field(min_length=1)
    confidence: float


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_is_fitted_to_the_schema(url, bank, method):
    llm = ChatOpenAI(base_url=url, api_key=SecretStr("sk-test"), model=MODEL, max_retries=0)
    problem = bank["humaneval/3"]
    system, user = texts("planner", problem)
    msgs = [("system", system), ("user", user)]
    plan = llm.with_structured_output(Plan, method=method).invoke(msgs)
    assert isinstance(plan, Plan) and plan.kind == "forward" and any("below_zero" in s for s in plan.steps)
    answer = llm.with_structured_output(Answer, method=method).invoke(msgs)
    assert isinstance(answer, Answer) and answer.steps == list(plan.steps) and answer.confidence == 0.0
    critique = llm.with_structured_output(Critique, method=method).invoke(
        [("system", "You are the codestill critic."), ("user", "Result:\nstatus: passed\ntests: 3/3 passed")])
    assert critique == Critique(verdict="accept")


def test_without_tool_calling_the_answer_is_prose(serve, bank):
    client = openai.OpenAI(base_url=serve(tools=False), api_key="sk-test", max_retries=0)
    r = client.chat.completions.create(model=MODEL, messages=messages("planner", bank["mbpp/2"]), tools=[TOOL])
    assert r.choices[0].message.tool_calls is None and "similar_elements" in (r.choices[0].message.content or "")


def test_prose_follows_a_schema_given_in_the_prompt(client, bank):
    schema = {"type": "object", "properties": {"source": {"type": "string"}, "code": {"type": "string"}},
              "required": ["source", "code"], "additionalProperties": False}
    extra = f"\nAnswer with JSON that {SCHEMA_MARKER}\n```json\n{json.dumps(schema)}\n```"
    r = client.chat.completions.create(model=MODEL, messages=messages("coder", bank["mbpp/2"], extra), n=3)
    for choice in r.choices:
        text = choice.message.content
        start = text.index("{")
        value, _ = json.JSONDecoder().raw_decode(text[start:])
        assert value == {"source": "", "code": bank["mbpp/2"].reference}


def test_the_server_process_ends_with_the_block_even_on_an_exception():
    with pytest.raises(RuntimeError), serve_subprocess(SimConfig(seed=99)) as base:
        assert httpx.get(f"{base}/models").status_code == 200
        raise RuntimeError("the body failed")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/models", timeout=5)
