"""Structured replies: ask a chat model for a pydantic object, and never crash on what comes back.

    method "tools"        a forced tool call whose parameters are the schema (OpenAI, vLLM, sim)
    method "json_schema"  ``response_format`` JSON schema (servers with guided decoding)
    method "prompt"       the schema in the prompt, for servers without either (local hf: models)
    method "auto"         "tools" for OpenAI-compatible models, "prompt" otherwise

Whatever the method, a reply is read tolerantly: tool-call arguments, else JSON anywhere in the text
(bare, fenced, or inside prose), else a fenced code block for a schema with one required string
field (``code``). A reply that does not validate, or was cut off (``finish_reason=length``), gets
``repair_rounds`` re-asks that show the model its reply and the error. What still fails, and calls
the client gave up on after its own retries (timeouts, 429, 5xx), come back as ``Reply.error``:
a recorded failure of that step. Failures every later call would repeat (unreachable server, bad
key, unknown model) raise an ``LLMError`` with the fix.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError

from codestill.llm import explain
from codestill.schemas import SCHEMA_MARKER, Usage

T = TypeVar("T", bound=BaseModel)
Method = Literal["auto", "tools", "json_schema", "prompt"]

_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:\n```|```)", re.S)


@dataclass(frozen=True)
class Reply(Generic[T]):
    """What a structured call produced: ``value``, or ``error`` saying why there is none."""

    value: T | None
    error: str | None
    raw: str
    usage: Usage
    tries: int

    @property
    def ok(self) -> bool:
        return self.value is not None


async def ask(model: BaseChatModel, messages: Sequence[BaseMessage], schema: type[T], *,
              method: Method = "auto", repair_rounds: int = 1, config: RunnableConfig | None = None,
              spec: str = "") -> Reply[T]:
    """Ask ``model`` for a ``schema`` object. ``spec`` names the model in errors."""
    method = resolve_method(model, method)
    convo = list(messages)
    if method == "prompt":
        convo.append(HumanMessage(schema_prompt(schema)))
    runnable = _bind(model, schema, method)
    usage, raw, error = Usage(), "", "no reply"
    for n in range(1, repair_rounds + 2):
        start = time.perf_counter()
        try:
            msg = await runnable.ainvoke(convo, config=config)
        except openai.OpenAIError as e:
            fatal = explain(e, spec or getattr(model, "model_name", ""))
            if fatal is not None:
                raise fatal from None
            usage += Usage(calls=1, latency_s=time.perf_counter() - start)
            return Reply(None, f"model call failed after the client's retries: {type(e).__name__}: {e}",
                         raw, usage, n)
        usage += _usage(msg, time.perf_counter() - start)
        value, error, raw = parse_reply(msg, schema)
        if value is not None:
            return Reply(value, None, raw, usage, n)
        convo += [AIMessage(raw or "(empty reply)"), HumanMessage(_repair_prompt(error, schema, method))]
    return Reply(None, error, raw, usage, repair_rounds + 1)


def resolve_method(model: BaseChatModel, method: Method) -> Method:
    if method != "auto":
        return method
    from langchain_openai import ChatOpenAI

    return "tools" if isinstance(model, ChatOpenAI) else "prompt"


def schema_prompt(schema: type[BaseModel]) -> str:
    return f"{SCHEMA_MARKER}\n```json\n{json.dumps(_json_schema(schema), indent=1)}\n```"


@functools.cache
def _json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    # A schema's JSON form is a pure function of the class, and building it is most of what binding
    # costs: a batch run asks for the same dozen schemas thousands of times. Callers do not mutate it.
    return schema.model_json_schema()


@functools.cache
def _openai_tool(schema: type[BaseModel]) -> dict[str, Any]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    return convert_to_openai_tool(schema)  # bind_tools passes a dict of this form through unchanged


def _bind(model: BaseChatModel, schema: type[BaseModel], method: Method) -> Runnable[Any, Any]:
    if method == "tools":
        return model.bind_tools([_openai_tool(schema)], tool_choice=schema.__name__)
    if method == "json_schema":
        return model.bind(response_format={"type": "json_schema", "json_schema": {
            "name": schema.__name__, "schema": _json_schema(schema)}})
    return model


def _repair_prompt(error: str, schema: type[BaseModel], method: Method) -> str:
    how = (f"as a call of the tool {schema.__name__}" if method == "tools"
           else "as one JSON object that follows the schema")
    return f"Your last reply could not be used: {error}\nReply again with the complete answer, {how}."


def _usage(msg: Any, latency_s: float) -> Usage:
    meta = getattr(msg, "usage_metadata", None) or {}
    return Usage(calls=1, prompt_tokens=meta.get("input_tokens", 0),
                 completion_tokens=meta.get("output_tokens", 0), latency_s=latency_s)


def parse_reply(msg: AIMessage, schema: type[T]) -> tuple[T | None, str, str]:
    """(value, error, raw text) from one reply, trying every place an answer can hide."""
    text = msg.content if isinstance(msg.content, str) else json.dumps(msg.content)
    candidates: list[Any] = [c["args"] for c in msg.tool_calls]
    raw = text
    for bad in msg.invalid_tool_calls:
        raw = bad.get("args") or raw
        candidates.append(extract_json(raw))
    if (msg.response_metadata or {}).get("finish_reason") == "length":
        return None, "the reply was cut off (finish_reason=length); answer more briefly", raw or text
    if msg.tool_calls:
        raw = json.dumps(msg.tool_calls[0]["args"])
    candidates += [extract_json(text), _code_answer(text, schema)]
    error = "no JSON object found in the reply"
    for obj in candidates:
        if obj is None:
            continue
        try:
            return schema.model_validate(obj), "", raw
        except ValidationError as e:
            error = "it does not fit the schema: " + "; ".join(
                f"{'.'.join(map(str, d['loc'])) or '(top)'}: {d['msg']}" for d in e.errors()[:3])
    return None, error, raw


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``: the whole text, a fenced block, or embedded in prose."""
    text = text.strip()
    if not text:
        return None
    for chunk in (text, *(body for _, body in _FENCE.findall(text))):
        try:
            return json.loads(chunk)
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[{\[]", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def extract_code(text: str) -> str | None:
    """The last fenced Python (or untagged) block."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    return blocks[-1] if blocks else None


def _code_answer(text: str, schema: type[BaseModel]) -> dict[str, str] | None:
    """A bare code block answers a schema whose only required field is a string (e.g. ``code``)."""
    required = [n for n, f in schema.model_fields.items() if f.is_required()]
    if len(required) != 1 or schema.model_fields[required[0]].annotation is not str:
        return None
    code = extract_code(text)
    return {required[0]: code} if code is not None else None
