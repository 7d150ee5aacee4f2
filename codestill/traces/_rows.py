"""From callback arguments to column values, on the writer thread: names, kinds, LLM replies, verdicts."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from enum import Enum
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from codestill.traces._codec import message_dict

# Metadata LangGraph copies onto every span that the columns already hold or that only locate a
# checkpoint; dropped to keep a span row small.
_NOISE = frozenset({"langgraph_node", "langgraph_triggers", "langgraph_path", "langgraph_checkpoint_ns",
                    "checkpoint_ns", "lc_versions", "task_id"})
# Only these invocation parameters are kept: the rest of a model's kwargs may hold credentials.
_PARAMS = ("model", "model_name", "temperature", "max_tokens", "max_completion_tokens", "top_p", "n", "seed",
           "stop", "_type")
_MAX_ERROR = 2000
_MAX_TRACEBACK = 20000


def span_name(name: str | None, serialized: Mapping[str, Any] | None, kind: str) -> str:
    if name:
        return name
    if serialized:
        found = serialized.get("name") or (serialized.get("id") or [None])[-1]
        if found:
            return str(found)
    return kind


def span_kind(kind: str, name: str, node: str | None, is_root: bool, tags: list[str] | None) -> str:
    """chain -> graph (a root), node (a LangGraph node's own run), or chain (anything inside)."""
    if kind != "chain":
        return kind
    if is_root:
        return "graph"
    # LangGraph tags a node's run (not the runnable it wraps, which has the same name) "graph:step:N".
    step = not tags or any(t.startswith("graph:step:") for t in tags)
    return "node" if node is not None and node == name and step else "chain"


def extra(metadata: Mapping[str, Any] | None, tags: list[str] | None,
          params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if metadata:
        kept = {k: v for k, v in metadata.items() if k not in _NOISE}
        if kept:
            out["metadata"] = kept
    if tags:
        out["tags"] = tags
    if params:
        kept = {k: params[k] for k in _PARAMS if params.get(k) is not None}
        if kept:
            out["params"] = kept
    return out or None


def request_model(metadata: Mapping[str, Any] | None, params: Mapping[str, Any] | None) -> str | None:
    """The model asked for; the reply's model name, when there is one, replaces it at the end."""
    for source, key in ((metadata, "ls_model_name"), (params, "model"), (params, "model_name")):
        if source and isinstance(source.get(key), str):
            return str(source[key])
    return None


def llm_reply(response: LLMResult) -> tuple[dict[str, Any], str | None, int | None, int | None]:
    """(outputs payload, served model, prompt tokens, completion tokens) of one LLM call."""
    gens: list[dict[str, Any]] = []
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    for batch in response.generations:
        for g in batch:
            if not isinstance(g, ChatGeneration):
                gens.append({"text": g.text})
                continue
            msg = g.message
            d = message_dict(msg)
            meta = msg.response_metadata or {}
            if meta:
                d["response_metadata"] = meta
            # With n > 1 every generation repeats the request's usage: count it once.
            if usage is None and isinstance(msg, AIMessage):
                usage = msg.usage_metadata
            model = model or meta.get("model_name") or meta.get("model")
            gens.append(d)
    out: dict[str, Any] = {"generations": gens}
    llm_output = response.llm_output or {}
    if llm_output:
        out["llm_output"] = llm_output
    model = model or llm_output.get("model_name")
    if usage:
        return out, model, usage.get("input_tokens"), usage.get("output_tokens")
    token_usage = llm_output.get("token_usage") or {}
    return out, model, token_usage.get("prompt_tokens"), token_usage.get("completion_tokens")


def error_parts(error: BaseException) -> tuple[str, dict[str, str]]:
    """A one-line-ish summary for the column, and the traceback for the payload."""
    text = str(error)
    summary = f"{type(error).__name__}: {text}" if text else type(error).__name__
    try:
        tb = "".join(traceback.format_exception(error))
    except Exception:  # a broken __str__ or traceback must not cost the span
        tb = repr(error)
    return summary[:_MAX_ERROR], {"traceback": tb[-_MAX_TRACEBACK:]}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str | int | float | bool):
        value = getattr(value, "verdict", None)
        return None if value is None else _text(value)
    return str(value)


def verdict(outputs: Any) -> str | None:
    """A root's verdict: its trajectory's when it has one, else its own ``verdict`` key."""
    if isinstance(outputs, Mapping):
        trajectory = outputs.get("trajectory")
        if isinstance(trajectory, Mapping):
            found = _text(trajectory.get("verdict"))
        else:
            found = _text(getattr(trajectory, "verdict", None))
        return found or _text(outputs.get("verdict"))
    return _text(getattr(outputs, "verdict", None))
