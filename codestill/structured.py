"""Structured replies: ask a chat model for a pydantic object, and never crash on what comes back.

    method "tools"        a forced tool call whose parameters are the schema (OpenAI, vLLM, sim)
    method "json_schema"  ``response_format`` JSON schema (servers with guided decoding)
    method "prompt"       an example answer in the prompt, for servers without either (local hf: models)
    method "auto"         "tools" for OpenAI-compatible models, "prompt" otherwise (the CLI's openers
                          probe each endpoint first: ``codestill._capability``)

A schema with a *text form* (a ``from_text`` classmethod, see ``TextForm``: plans as a numbered list,
code as a fenced block in prose, tests as a fenced block of asserts) is asked for in that form whatever
the method: it is what models write best, and what a server without tool calling or a base model can
write at all. Its caller puts the form's instructions (``text_format``) in the prompt.

Whatever the method, a reply is read tolerantly: tool-call arguments, the text form, JSON anywhere in
the text (bare, fenced, or inside prose), a fenced code block for a schema with one required string
field (``code``). A complete answer inside a reply that was cut off (``finish_reason=length``) is
used. A reply that does not validate gets ``repair_rounds`` re-asks that show the model its reply and
say what was wrong with it (a cut-off one: answer only, no explanation). What still fails, and calls
the client gave up on after its own retries (timeouts, 429, 5xx), come back as ``Reply.error``: a
recorded failure of that step. Failures every later call would repeat (unreachable server, bad key,
unknown model) raise an ``LLMError`` with the fix. ``Usage`` counts each role's replies, the cut-off
ones and the unreadable ones (no parser could read them), for ``stats.json``.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError

from codestill.errors import ModelCallError
from codestill.schemas import SCHEMA_MARKER, Usage

T = TypeVar("T", bound=BaseModel)
Method = Literal["auto", "tools", "json_schema", "prompt"]

_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:\n```|```)", re.S)


class TextForm(Protocol):
    """A schema that has a natural text form: how to ask for it and how to read it back."""

    @classmethod
    def from_text(cls, text: str) -> dict[str, Any] | None:
        """The fields read from a reply's text, or None when the text holds no answer of this form."""
        ...

    @classmethod
    def text_format(cls, brief: bool = False) -> str:
        """How the reply must look, said to the model; ``brief``: the answer alone, no explanation."""
        ...


def text_form(schema: type[BaseModel]) -> type[TextForm] | None:
    return cast("type[TextForm]", schema) if hasattr(schema, "from_text") and hasattr(schema, "text_format") else None


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
              spec: str = "", role: str = "", max_tokens: int | None = None) -> Reply[T]:
    """Ask ``model`` for a ``schema`` object. ``spec`` names the model in errors; ``role`` is whose
    replies ``Usage`` counts; ``max_tokens`` caps each reply (else the model's own limit)."""
    form = text_form(schema)
    method = resolve_method(model, method)
    convo = list(messages)
    if method == "prompt" and form is None:
        convo.append(HumanMessage(schema_prompt(schema)))
    runnable = model if form is not None else _bind(model, schema, method)
    if max_tokens is not None:
        runnable = runnable.bind(**{_max_tokens_arg(model): max_tokens})
    usage, raw, error = Usage(), "", "no reply"
    who = role or "other"
    for n in range(1, repair_rounds + 2):
        start = time.perf_counter()
        try:
            msg = await runnable.ainvoke(convo, config=config)
        except ModelCallError as e:  # a fatal LLMError (no server, no key) goes up as it is
            usage += Usage(calls=1, latency_s=time.perf_counter() - start)
            return Reply(None, f"model call failed after the client's retries: {e}"
                         + (_SLOW if e.timed_out else ""), raw, usage, n)
        value, error, raw = parse_reply(msg, schema)
        cut = _cut_off(msg)
        usage += _usage(msg, time.perf_counter() - start, who, cut=cut, unreadable=value is None)
        if value is not None:
            return Reply(value, None, raw, usage, n)
        convo += [AIMessage(_echo(raw)), HumanMessage(_repair_prompt(error, schema, method, cut))]
    return Reply(None, error, raw, usage, repair_rounds + 1)


# A timed-out call is a slow server far more often than a broken one: say which settings to change.
_SLOW = ("; the server is slower than llm.timeout_s allows: raise llm.timeout_s, or lower llm.max_tokens "
         "(or the role's limit in llm.role_max_tokens) so that a reply fits in it")


def _max_tokens_arg(model: BaseChatModel) -> str:
    from langchain_openai import ChatOpenAI

    return "max_completion_tokens" if isinstance(model, ChatOpenAI) else "max_tokens"


def _echo(raw: str, limit: int = 2000) -> str:
    """The model's reply as shown back to it in a repair: a rambling one only in part (it is context
    the model pays for, and the error message says what was wrong)."""
    if not raw:
        return "(empty reply)"
    return raw if len(raw) <= limit else raw[:limit] + "\n[... the rest of the reply is left out]"


def resolve_method(model: BaseChatModel, method: Method) -> Method:
    if method != "auto":
        return method
    from langchain_openai import ChatOpenAI

    return "tools" if isinstance(model, ChatOpenAI) else "prompt"


def schema_prompt(schema: type[BaseModel]) -> str:
    """The prompt-mode request: an example answer whose values say what goes where. A raw JSON Schema
    (``$defs``, ``anyOf``, ``title``) is what small models copy back instead of answering."""
    return f"{SCHEMA_MARKER}\n```json\n{json.dumps(example_answer(schema), indent=1)}\n```"


@functools.cache
def example_answer(schema: type[BaseModel]) -> dict[str, Any]:
    """An object of ``schema``'s shape: each string says what goes there (its field's description),
    each choice lists its options; one item per list."""
    root = _json_schema(schema)
    return cast("dict[str, Any]", _example(root, root, "answer"))


def _example(node: Any, root: dict[str, Any], name: str, depth: int = 0) -> Any:
    if not isinstance(node, dict) or depth > 8:
        return f"<{name}>"
    if "$ref" in node:
        target: Any = root
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _example({**target, **{k: v for k, v in node.items() if k != "$ref"}}, root, name, depth + 1)
    branches = [b for b in node.get("anyOf", []) if isinstance(b, dict) and b.get("type") != "null"]
    if branches:
        return _example({**branches[0], "description": node.get("description", "")}, root, name, depth + 1)
    what = str(node.get("description") or name).strip()
    if "enum" in node:
        return " or ".join(str(v) for v in node["enum"])
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return {k: _example(v, root, k, depth + 1) for k, v in (node.get("properties") or {}).items()}
    if kind == "array":
        item = node.get("items", {})
        if isinstance(item, dict) and not item.get("description"):
            item = {**item, "description": what}
        return [_example(item, root, name, depth + 1)]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 0
    return f"<{what}>"


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


def _repair_prompt(error: str, schema: type[BaseModel], method: Method, cut: bool) -> str:
    """What was wrong with the last reply, and how to answer: never the same request again."""
    form = text_form(schema)
    if form is not None:
        how = form.text_format(brief=cut)
        return f"Your last reply could not be used: {error}\n{how}"
    how = (f"as a call of the tool {schema.__name__}" if method == "tools"
           else "as one JSON object that follows the schema")
    brief = " Keep it short: only the JSON object, no explanation." if cut else ""
    return f"Your last reply could not be used: {error}\nReply again with the complete answer, {how}.{brief}"


def _cut_off(msg: Any) -> bool:
    return (getattr(msg, "response_metadata", None) or {}).get("finish_reason") == "length"


def _usage(msg: Any, latency_s: float, role: str = "other", *, cut: bool = False,
           unreadable: bool = False) -> Usage:
    meta = getattr(msg, "usage_metadata", None) or {}
    return Usage(calls=1, prompt_tokens=meta.get("input_tokens", 0),
                 completion_tokens=meta.get("output_tokens", 0), latency_s=latency_s,
                 replies={role: 1}, cut_off={role: 1} if cut else {},
                 unreadable={role: 1} if unreadable else {})


def parse_reply(msg: AIMessage, schema: type[T]) -> tuple[T | None, str, str]:
    """(value, error, raw text) from one reply, trying every place an answer can hide. A complete
    answer in a reply that was cut off at the token limit is still an answer."""
    text = msg.content if isinstance(msg.content, str) else json.dumps(msg.content)
    candidates: list[Any] = [c["args"] for c in msg.tool_calls]
    raw = text
    for bad in msg.invalid_tool_calls:
        raw = bad.get("args") or raw
        candidates.append(extract_json(raw))
    if msg.tool_calls:
        raw = json.dumps(msg.tool_calls[0]["args"])
    form = text_form(schema)
    if form is not None:  # the text form is the authority on what a code block in the reply means
        candidates += [form.from_text(text), extract_json(text)]
    else:
        candidates += [extract_json(text), _code_answer(text, schema)]
    error = ("no answer in the requested form was found in the reply" if form is not None
             else "no JSON object found in the reply")
    for obj in candidates:
        if obj is None:
            continue
        try:
            return schema.model_validate(obj), "", raw
        except ValidationError as e:
            error = "it does not fit the schema: " + "; ".join(
                f"{'.'.join(map(str, d['loc'])) or '(top)'}: {d['msg']}" for d in e.errors()[:3])
    if _cut_off(msg):
        error = ("the reply was cut off at the token limit (finish_reason=length) before the answer was "
                 "complete; answer more briefly")
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


def code_blocks(text: str) -> list[str]:
    """Every complete fenced Python (or untagged) block, in order; an unclosed last block is not one."""
    return [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]


def extract_code(text: str) -> str | None:
    """The last fenced Python (or untagged) block."""
    blocks = code_blocks(text)
    return blocks[-1] if blocks else None


def _code_answer(text: str, schema: type[BaseModel]) -> dict[str, str] | None:
    """A bare code block answers a schema whose only required field is a string (e.g. ``code``)."""
    required = [n for n, f in schema.model_fields.items() if f.is_required()]
    if len(required) != 1 or schema.model_fields[required[0]].annotation is not str:
        return None
    code = extract_code(text)
    return {required[0]: code} if code is not None else None
