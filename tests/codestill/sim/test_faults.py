"""Injected faults, one kind at a time at fault_rate 1: exactly that wire behaviour. Retries roll again."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from .conftest import MODEL, messages, tool_arguments

TOOL: ChatCompletionToolParam = {"type": "function", "function": {"name": "plan", "parameters": {
    "type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string"}}}, "required": ["steps"]}}}


def only(serve, kind: str, **settings) -> str:
    return serve(fault_rate=1.0, faults=(kind,), **settings)


def body(bank, **extra) -> dict:
    return {"model": MODEL, "messages": messages("planner", bank["humaneval/3"]), **extra}


def test_429_says_when_to_retry(serve, bank):
    r = httpx.post(f"{only(serve, '429', retry_after_ms=1500)}/chat/completions", json=body(bank))
    assert r.status_code == 429
    assert r.headers["retry-after-ms"] == "1500" and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"


def test_500_is_an_openai_server_error(serve, bank):
    client = openai.OpenAI(base_url=only(serve, "500"), api_key="sk-test", max_retries=0)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(**body(bank))
    assert e.value.status_code == 500 and isinstance(e.value.body, dict) and e.value.body["type"] == "server_error"


def test_a_hang_times_the_client_out_and_the_server_stays_responsive(serve, bank):
    url = only(serve, "hang", hang_s=60)
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=0.5)
    for stream in (False, True):
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(**body(bank), stream=stream)
    assert httpx.get(f"{url}/models", timeout=5).status_code == 200
    with pytest.raises(httpx.ReadTimeout):  # still hanging, not broken, for the next chat request
        httpx.post(f"{url}/chat/completions", json=body(bank, n=2), timeout=0.5)


@pytest.mark.parametrize("form", ["tools", "json_object", "stream_tools"])
def test_bad_json_does_not_parse(serve, bank, form):
    client = openai.OpenAI(base_url=only(serve, "bad_json"), api_key="sk-test", max_retries=0)
    if form == "json_object":
        r = client.chat.completions.create(**body(bank), response_format={"type": "json_object"})
        text = r.choices[0].message.content
    elif form == "tools":
        r = client.chat.completions.create(**body(bank), tools=[TOOL])
        text = tool_arguments(r.choices[0].message)
    else:
        chunks = client.chat.completions.create(**body(bank), tools=[TOOL], stream=True)
        text = "".join((tc.function and tc.function.arguments) or "" for c in chunks for tc in (c.choices[0].delta.tool_calls or []))
    assert text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_bad_json_in_prose_breaks_the_fenced_block(serve, bank):
    client = openai.OpenAI(base_url=only(serve, "bad_json"), api_key="sk-test", max_retries=0)
    # the decomposer answers prose as JSON (a planner's prose is a numbered plan, which has no JSON to break)
    asked = {**body(bank), "messages": messages("decomposer", bank["humaneval/3"])}
    text = client.chat.completions.create(**asked, n=3).choices
    for choice in text:
        content = choice.message.content
        start = content.index("{")
        with pytest.raises(json.JSONDecodeError):
            json.loads(content[start:].removesuffix("```").strip())


def test_truncate_cuts_the_reply_with_finish_reason_length(serve, url, bank):
    client = openai.OpenAI(base_url=only(serve, "truncate"), api_key="sk-test", max_retries=0)
    whole = openai.OpenAI(base_url=url, api_key="sk-test").chat.completions.create(**body(bank), tools=[TOOL])
    full = tool_arguments(whole.choices[0].message)
    r = client.chat.completions.create(**body(bank), tools=[TOOL])
    assert r.choices[0].finish_reason == "length"
    assert tool_arguments(r.choices[0].message) == full[: len(full) // 2]
    text = client.chat.completions.create(**body(bank))
    assert text.choices[0].finish_reason == "length" and not text.choices[0].message.content.endswith("```")


def test_a_retried_identical_request_eventually_succeeds(serve, bank):
    url = serve(fault_rate=0.5, faults=("429", "500"), retry_after_ms=0)
    statuses = []
    for _ in range(40):
        statuses.append(httpx.post(f"{url}/chat/completions", json=body(bank)).status_code)
        if statuses[-1] == 200:
            break
    assert statuses[-1] == 200
    # The openai client retries on its own, honouring retry-after-ms.
    url = serve(fault_rate=0.5, faults=("429",), retry_after_ms=10)
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=20)
    for pid in ("mbpp/2", "mbpp/3", "mbpp/4", "humaneval/0"):
        r = client.chat.completions.create(model=MODEL, messages=messages("coder", bank[pid]))
        assert bank[pid].entry_point in r.choices[0].message.content


def test_faults_leave_other_endpoints_alone(serve):
    assert httpx.get(f"{only(serve, '500')}/models").status_code == 200
