"""Which structured-reply method an endpoint supports, found out by asking it (``llm.structured=auto``).

Servers that speak the same OpenAI protocol differ in what they honour: the OpenAI API and a vLLM
with a tool-call parser take a forced tool call and a JSON schema; a vLLM started without
``--enable-auto-tool-choice --tool-call-parser`` refuses ``tool_choice`` with HTTP 400 but decodes a
``response_format`` JSON schema; ``transformers serve`` ignores both and answers in prose. A wrong
guess costs a whole run: every call 400s, or every reply needs the tolerant parser. So, once per
endpoint, ``detect_structured`` asks a tiny question (one int field) each way, best first:

    1. a forced named tool call      works if the reply carries that tool call and its arguments validate
    2. response_format json_schema   works if the content is JSON that validates
    3. prompt                        the schema in the prompt and a tolerant parser: works everywhere

A 400/422 (refused), a 5xx after the client's retries, or a reply without the structure means "not
this way". Failures every later call would repeat (unreachable server, bad key, unknown model) raise
the ``LLMError`` of ``codestill.llm.explain``; a probe that times out or is rate limited after the
client's retries raises an ``LLMError`` too (no method can be told from no answer). Chat models that are
not OpenAI-compatible clients (local ``hf:`` models) get "prompt" without a call.

``StructuredProbes`` is the per-process cache an opener owns: every spec is probed once, however many
roles, sessions or rounds use it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field, ValidationError

from codestill.errors import LLMError, ModelCallError

Concrete = Literal["tools", "json_schema", "prompt"]
Probed = Literal["tools", "json_schema"]
ORDER: tuple[Probed, ...] = ("tools", "json_schema")  # best first; "prompt" needs no probe
PROBE_TOKENS = 64  # the answer is a few tokens: a slow local server need not write 2048 of them
_TRIES = 2  # a malformed or cut-off reply may be one bad sample (or a fault); a refusal or prose is not retried
_QUESTION = "What is 2+3? Give the answer as a number."


class Answer(BaseModel):
    """The probe's schema: small enough for any server, typed enough that prose does not pass for it."""

    answer: int = Field(description="The number.")


@dataclass(frozen=True)
class Capability:
    """The method to use with an endpoint, and one line per method tried saying how it went."""

    method: Concrete
    notes: tuple[str, ...]


async def _call(runnable: Any, spec: str, what: str) -> tuple[Any, str | None]:
    """(reply, None), or (None, why the server would not) for a refusal; raises what no method survives."""
    try:
        return await runnable.ainvoke([HumanMessage(_QUESTION)]), None
    except ModelCallError as e:  # fatal errors (no server, no key, no such model) go up as they are
        if e.status in (400, 422):
            return None, f"refused ({e.detail})"
        if e.status is not None and e.status >= 500:
            return None, f"failed ({e.detail})"
        if e.status is not None:
            raise LLMError(f"{spec}: the {what} probe failed ({e.detail}); set llm.structured to tools, "
                           "json_schema or prompt to skip probing") from None
        raise LLMError(f"{spec}: no answer to the {what} probe after the client's retries ({e}); a slow "
                       "server needs a larger llm.timeout_s, or set llm.structured to tools, json_schema "
                       "or prompt to skip probing") from None


def _cut(reply: Any) -> bool:
    return (getattr(reply, "response_metadata", None) or {}).get("finish_reason") == "length"


def _tool_args(reply: Any) -> tuple[bool, str, bool]:
    """(works, why not, worth another try)."""
    calls = [c for c in getattr(reply, "tool_calls", None) or [] if c.get("name") == Answer.__name__]
    if not calls:
        broken = bool(getattr(reply, "invalid_tool_calls", None)) or _cut(reply)
        return False, ("a malformed or cut-off tool call" if broken
                       else "no tool call in the reply (the server ignores tools)"), broken
    try:
        Answer.model_validate(calls[0]["args"])
    except ValidationError as e:
        return False, f"the tool call does not fit the schema ({e.errors()[0]['msg']})", True
    return True, "works", False


def _json_content(reply: Any) -> tuple[bool, str, bool]:
    """(works, why not, worth another try)."""
    text = reply.content if isinstance(reply.content, str) else ""
    try:
        Answer.model_validate(json.loads(text))
    except ValueError:  # json's and pydantic's errors both
        broken = _cut(reply) or text.lstrip().startswith("{")
        return False, ("malformed or cut-off JSON" if broken
                       else "the reply is not JSON of the schema (the server ignores response_format)"), broken
    return True, "works", False


async def _probe(model: BaseChatModel, spec: str, method: Probed) -> tuple[bool, str]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if method == "tools":
        label, check = "named tool choice", _tool_args
        runnable = model.bind_tools([convert_to_openai_tool(Answer)], tool_choice=Answer.__name__,
                                    max_completion_tokens=PROBE_TOKENS)
    else:
        label, check = "json_schema", _json_content
        runnable = model.bind(max_completion_tokens=PROBE_TOKENS, response_format={
            "type": "json_schema", "json_schema": {"name": Answer.__name__, "schema": Answer.model_json_schema()}})
    why = "no reply"
    for _ in range(_TRIES):
        reply, refusal = await _call(runnable, spec, label)
        if refusal is not None:
            return False, f"{label}: {refusal}"
        ok, why, again = check(reply)
        if ok:
            return True, f"{label}: works"
        if not again:
            break
    return False, f"{label}: {why}"


async def detect_structured(model: BaseChatModel, spec: str, *,
                            methods: Iterable[Probed] = ORDER) -> Capability:
    """The best of ``methods`` (in ``ORDER``) that ``model``'s server honours, else "prompt"."""
    from langchain_openai import ChatOpenAI

    if not isinstance(model, ChatOpenAI):
        return Capability("prompt", (f"prompt: {type(model).__name__} is not an OpenAI-compatible client "
                                     "(no tool calls or response_format to probe)",))
    wanted = tuple(methods)
    notes: list[str] = []
    for method in ORDER:
        if method not in wanted:
            continue
        ok, note = await _probe(model, spec, method)
        notes.append(note)
        if ok:
            return Capability(method, tuple(notes))
    notes.append("prompt: the fallback (the schema in the prompt, the reply read tolerantly)")
    return Capability("prompt", tuple(notes))


class StructuredProbes:
    """What each endpoint supports, probed once per spec for as long as its owner (an opener) lives.

    Not for concurrent use: openers resolve their models one after another, before any work starts.
    """

    def __init__(self) -> None:
        self._found: dict[tuple[str, tuple[Probed, ...]], Capability] = {}

    async def capability(self, model: BaseChatModel, spec: str,
                         methods: tuple[Probed, ...] = ORDER) -> Capability:
        key = (spec, methods)
        if key not in self._found:
            self._found[key] = await detect_structured(model, spec, methods=methods)
        return self._found[key]

    @property
    def found(self) -> dict[str, Capability]:
        """Each spec probed, with what the full probe found (for a run's record)."""
        return {spec: cap for (spec, methods), cap in self._found.items() if methods == ORDER}

    async def resolve(self, setting: str, models: Iterable[tuple[str, BaseChatModel]]) -> Concrete:
        """The method every agent of these (spec, model) pairs uses: ``setting`` unless it is "auto";
        then the one method all their endpoints honour, best first ("prompt" always does)."""
        if setting != "auto":
            return setting  # type: ignore[return-value]  # llm.structured's other values are concrete
        first: dict[str, BaseChatModel] = {}
        for spec, model in models:
            first.setdefault(spec, model)
        if not first:
            return "prompt"
        found = {spec: await self.capability(model, spec) for spec, model in first.items()}
        methods: set[Concrete] = {cap.method for cap in found.values()}
        if len(methods) == 1:
            return methods.pop()
        if "prompt" in methods:
            return "prompt"
        # some endpoints take tools, others only json_schema: do the tool-calling ones take it too?
        for spec, cap in found.items():
            if cap.method == "tools" and (await self.capability(first[spec], spec, ("json_schema",))).method \
                    != "json_schema":
                return "prompt"
        return "json_schema"
