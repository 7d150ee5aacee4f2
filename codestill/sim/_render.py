"""How an answer dict goes on the wire: a tool call, JSON content, or prose with a fenced block.

    request has tools (and the server does tool calling)  -> a call of the tool_choice function (or the
                                                             first tool), arguments fitted to its parameters
    response_format json_schema                           -> content: JSON fitted to that schema
    response_format json_object                           -> content: the answer dict as JSON
    otherwise                                             -> prose: a sentence and a ```python block (coder
                                                             code, tester tests, a plain request's code), a
                                                             numbered plan (a plain "write a plan" request, or
                                                             the planner: codestill's text form), "Input:" /
                                                             "Output:" fenced pairs (a tester's stdin/stdout
                                                             cases: codestill's text form) or a ```json
                                                             block (others); some styles put the JSON inline,
                                                             unfenced

In prose, a prompt that contains ``codestill.schemas.SCHEMA_MARKER`` and then a ```json fenced schema gets
JSON fitted to that schema, whatever the role. Two faults change the text itself: ``bad_json``
(cut at about two thirds so it does not parse; in prose the fenced block is cut and left open) and
``truncate`` (cut at about half, ``finish_reason: "length"``).

Two private keys of an answer never go on the wire (``_teacher`` sets them): ``FLAW``, the label of a
realistic teacher's flaw (kept in ``Reply.flaw``; the app lists them in a response header), and
``RAW``, the top-level fields whose value, or absence, must survive fitting to a schema: an answer
that breaks the schema on purpose, as a real model's sometimes does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from codestill.schemas import SCHEMA_MARKER
from codestill.sim._fit import fit

_MARKED_SCHEMA = re.compile(re.escape(SCHEMA_MARKER) + r"\s*```(?:json)?[ \t]*\n(.*?)```", re.S | re.I)
_WHAT = {"planner": "plan", "decomposer": "decomposition into modules", "critic": "review",
         "coder": "solution", "tester": "tests"}
PROSE_STYLES = 3
FLAW = "__sim_flaw__"
RAW = "__sim_raw__"


@dataclass(frozen=True)
class Reply:
    """One choice's output. ``content`` and ``arguments`` are what goes on the wire, faults applied."""

    content: str | None
    tool_name: str | None = None
    arguments: str | None = None
    finish_reason: str = "stop"
    flaw: str | None = None  # the realistic teacher's flaw label, if any (never sent in the body)


def pick_tool(tools: Any, tool_choice: Any) -> dict | None:
    """The function to call: the one tool_choice names, else the first; None for tool_choice "none"."""
    if tool_choice == "none" or not isinstance(tools, list):
        return None
    fns = [t["function"] for t in tools
           if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")]
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        named = [f for f in fns if f["name"] == wanted]
        if named:
            return named[0]
    return fns[0] if fns else None


@lru_cache(maxsize=256)
def _parse_schema(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def marked_schema(prompt: str) -> Any:
    """The schema a prompt asks prose JSON to follow, if it carries the marker: the JSON Schema given,
    or the one an example answer implies (codestill's prompt mode shows an example)."""
    if SCHEMA_MARKER.lower() not in prompt.lower():
        return None
    m = _MARKED_SCHEMA.search(prompt)
    shown = _parse_schema(m.group(1)) if m else None
    if isinstance(shown, dict) and ("$defs" in shown or (shown.get("type") == "object" and "properties" in shown)):
        return shown
    return _schema_of(shown) if shown is not None else None


def _schema_of(example: Any) -> Any:
    """A JSON Schema that ``example`` is an instance of: its keys and the types of its values."""
    if isinstance(example, dict):
        # nothing required: an optional field the answer lacks stays out (a made-up default may not fit)
        return {"type": "object", "properties": {k: _schema_of(v) for k, v in example.items()}}
    if isinstance(example, list):
        return {"type": "array", "items": _schema_of(example[0]) if example else {}}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int | float):
        return {"type": "number"}
    return {}  # a string: what goes there, not a type to hold the answer to


def _dumps(value: Any, pretty: bool = False) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0).decode()


def _cut(text: str, share: float) -> str:
    return text[: max(1, int(len(text) * share))] if text else text


def render(answer: dict, role: str, *, tool: dict | None, response_format: Any, prompt: str,
           style: int, fault: str | None) -> Reply:
    """The reply for one choice. ``tool``/``response_format`` are None when the server ignores them."""
    flaw, raw = answer.get(FLAW), tuple(answer.get(RAW, ()))
    if flaw is not None or raw:
        answer = {k: v for k, v in answer.items() if k not in (FLAW, RAW)}
    reply = _render(answer, raw, role, tool=tool, response_format=response_format, prompt=prompt, style=style,
                    fault=fault)
    return replace(reply, flaw=flaw) if flaw is not None else reply


def _fitted(answer: dict, schema: Any, raw: tuple[str, ...]) -> Any:
    """``fit``, then the ``raw`` fields as the answer has them (or left out where it has none)."""
    out = fit(answer, schema)
    if raw and isinstance(out, dict):
        for name in raw:
            if name in answer:
                out[name] = answer[name]
            else:
                out.pop(name, None)
    return out


def _render(answer: dict, raw: tuple[str, ...], role: str, *, tool: dict | None, response_format: Any,
            prompt: str, style: int, fault: str | None) -> Reply:
    if tool is not None:
        args = _dumps(_fitted(answer, tool.get("parameters") or {"type": "object"}, raw))
        return _faulted(Reply(content=None, tool_name=tool["name"], arguments=args, finish_reason="tool_calls"),
                        fault)
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return _faulted(Reply(content=_dumps(_fitted(answer, schema, raw))), fault)
    if kind == "json_object":
        return _faulted(Reply(content=_dumps(answer)), fault)
    schema = marked_schema(prompt)
    broken = fault == "bad_json"
    if schema is not None:
        text = _json_prose(_fitted(answer, schema, raw), role, style, broken)
    elif role in ("coder", "unknown") and "code" in answer:
        text = _code_prose(answer["code"], answer.get("explanation", ""), style, broken)
    elif role == "unknown" and "plan" in answer:  # a plain "write a plan" request: the plan as text
        text = f"Here is a plan.\n\n{answer['plan']}"
    elif role == "planner" and isinstance(answer.get("steps"), list):  # codestill's text form of a plan
        text = _plan_prose(answer["steps"], str(answer.get("rationale") or ""), style, broken)
    elif role == "critic":  # codestill's text form of a verdict
        text = _verdict_prose(answer, broken)
    elif role == "tester" and isinstance(answer.get("cases"), list):  # codestill's text form of io cases
        text = _cases_prose(answer["cases"], style, broken)
    elif role == "tester" and "tests" in answer:
        about = f"These tests check {answer.get('entry_point') or 'the function'}."
        text = _code_prose(answer["tests"], about, style, broken)
    else:
        text = _json_prose(answer, role, style, broken)
    return _faulted(Reply(content=text), "truncate" if fault == "truncate" else None)


def _faulted(reply: Reply, fault: str | None) -> Reply:
    if fault not in ("bad_json", "truncate"):
        return reply
    share, finish = (0.66, reply.finish_reason) if fault == "bad_json" else (0.5, "length")
    if reply.arguments is not None:
        return Reply(content=None, tool_name=reply.tool_name, arguments=_cut(reply.arguments, share),
                     finish_reason=finish)
    return Reply(content=_cut(reply.content or "", share), finish_reason=finish)


def _fence(lang: str, body: str, broken: bool) -> str:
    body = body.strip("\n")  # HumanEval sources start with blank lines; a fence need not
    return f"```{lang}\n{_cut(body, 0.66)}" if broken else f"```{lang}\n{body}\n```"


def _json_prose(value: Any, role: str, style: int, broken: bool) -> str:
    what = _WHAT.get(role, "answer")
    s = style % PROSE_STYLES
    if s == 2:  # inline, no fence: what a tolerant parser must dig out of a sentence
        compact = _dumps(value)
        return f"Here is the {what} as JSON: {_cut(compact, 0.66) if broken else compact}"
    block = _fence("json", _dumps(value, pretty=True), broken)
    if s == 0:
        return f"Here is the {what}.\n\n{block}"
    return f"Sure. The {what}, in the requested format:\n{block}\nLet me know if anything should change."


def _plan_prose(steps: list, rationale: str, style: int, broken: bool) -> str:
    lines = [f"{i}. {step}" for i, step in enumerate(steps, 1)]
    if rationale.strip():
        lines.append(f"Rationale: {rationale.strip()}")
    body = "\n".join(lines)
    if broken:  # cut inside the list: the steps that made it are an incomplete plan
        body = _cut(body, 0.66)
    return body if style % PROSE_STYLES == 0 else f"Here is the plan.\n\n{body}"


def _verdict_prose(answer: dict, broken: bool) -> str:
    """``Verdict: ...`` lines; a verdict the answer lacks (a realistic critic's flaw) is left out."""
    lines = [f"Verdict: {answer['verdict']}"] if answer.get("verdict") is not None else []
    if answer.get("reason"):
        lines.append(f"Reason: {answer['reason']}")
    lines.append(f"Weak tests: {'yes' if answer.get('weak_tests') else 'no'}")
    lines += ["Issues:", *(f"- {i}" for i in answer.get("issues") or ())]
    if answer.get("suggestion"):
        lines.append(f"Suggestion: {answer['suggestion']}")
    body = "\n".join(lines)
    return _cut(body, 0.2) if broken else body


def _cases_prose(cases: list, style: int, broken: bool) -> str:
    """Each case as an "Input:" line and a fenced block, an "Output:" line and a fenced block; none: a
    sentence saying so (no answer in the form)."""
    def block(text: str) -> str:
        body, ticks = (text[:-1] if text.endswith("\n") else text), "```"
        while ticks in body:
            ticks += "`"
        return f"{ticks}\n{body}\n{ticks}" if body else f"{ticks}\n{ticks}"
    s = style % PROSE_STYLES
    label = ("**Input:**", "**Output:**") if s == 2 else ("Input:", "Output:")
    body = "\n\n".join(f"{label[0]}\n{block(str(c.get('input', '')))}\n{label[1]}\n{block(str(c.get('output', '')))}"
                        for c in cases if isinstance(c, dict))
    if not body:
        return "I could not work out any case for this program."
    if broken:
        body = _cut(body, 0.66)
    return body if s == 0 else f"Here are the stdin/stdout cases.\n\n{body}"


def _code_prose(code: str, note: str, style: int, broken: bool) -> str:
    if "```" in code:  # already prose around a fenced block (a realistic coder's flaw): sent as it is
        return _cut(code, 0.66) if broken else code
    block = _fence("python", code, broken)
    s = style % PROSE_STYLES
    if s == 0:
        return f"{block}\n\n{note}".rstrip()
    if s == 1:
        return f"{note}\n\n{block}".lstrip()
    return f"Here you go.\n\n{block}\n\n{note}".rstrip()
