"""What readers get: run summaries for `ls`, and span trees (payloads decoded) for `show`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

SpanKind = Literal["graph", "node", "chain", "llm", "tool", "retriever"]
# "unfinished": still "running" in the store, but the process that wrote it is gone (or closed it).
SpanStatus = Literal["running", "unfinished", "ok", "error"]


class RunSummary(BaseModel):
    """One root run (a graph invocation, or a bare LLM / tool call made with the tracer)."""

    model_config = ConfigDict(frozen=True)

    id: str
    graph: str
    task_id: str | None
    status: SpanStatus
    start: datetime
    duration_s: float | None
    tokens: int
    llm_calls: int
    verdict: str | None
    spans: int

    @property
    def short_id(self) -> str:
        """The random tail of the id: LangChain's uuid7 ids share their leading (time) digits."""
        return self.id[-8:]


class Span(BaseModel):
    """One run in a trace, with its children in start order."""

    id: str
    trace_id: str
    parent_id: str | None
    kind: SpanKind
    name: str
    node: str | None
    task_id: str | None
    status: SpanStatus
    start: datetime
    end: datetime | None
    duration_s: float | None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    verdict: str | None = None
    inputs: Any = None
    outputs: Any = None
    extra: dict[str, Any] | None = None
    children: list[Span] = []

    @property
    def tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    def prompt_preview(self, width: int = 100) -> str:
        """The last prompt message of an LLM span, on one line."""
        inputs = self.inputs if isinstance(self.inputs, dict) else {}
        batches = inputs.get("messages") or [inputs.get("prompts") or []]
        last: Any = batches[-1][-1] if batches and batches[-1] else ""
        return _one_line(last.get("content", "") if isinstance(last, dict) else last, width)

    def response_preview(self, width: int = 100) -> str:
        """The reply of an LLM span on one line: its text, or the tools it calls."""
        gens = self.outputs.get("generations") if isinstance(self.outputs, dict) else None
        if not gens:
            return ""
        first = gens[0]
        text = content_text(first.get("content", first.get("text", "")))
        if not text.strip() and first.get("tool_calls"):
            calls = (f"{c.get('name')}({_args(c.get('args'))})" for c in first["tool_calls"])
            text = "calls " + ", ".join(calls)
        return _one_line(text, width)


class SpanTree(BaseModel):
    """A trace from ``root`` down; ``spans`` counts them all."""

    root: Span
    spans: int

    def walk(self) -> Iterator[Span]:
        """Every span, depth first, parents before children."""
        stack = [self.root]
        while stack:
            span = stack.pop()
            yield span
            stack.extend(reversed(span.children))


def content_text(content: Any) -> str:
    """A chat message's content as text: a string, or the text parts of a list of content blocks (one
    per line); anything else as JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                         if isinstance(b, str | dict))
    return "" if content is None else orjson.dumps(content, option=orjson.OPT_INDENT_2, default=repr).decode()


def _args(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(f"{k}={v!r}" for k, v in args.items())
    return "" if args is None else str(args)


def _one_line(text: Any, width: int) -> str:
    flat = " ".join(content_text(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
