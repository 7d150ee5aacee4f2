"""A recorded run, read back for replay: its task, its LLM calls by request, and its memory searches.

Calls are indexed by (graph node, request messages): concurrent branches ask in any order, so the
order of calls across branches is not a key; the content of the request is. A request asked
several times (N plans from one prompt) is answered from its recordings in their recorded order.
Memory searches are answered from the nodes that recorded them: a node whose inputs hold ``specs``
and whose outputs hold ``branch_hits`` (the solve graph's ``retrieve``). Anything the replay asks
for that the recording lacks raises ``ReplayMismatch`` naming the node and the request.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from codestill.errors import ReplayError, ReplayMismatch
from codestill.schemas import SCHEMA_MARKER, MemoryHit, ModuleSpec, Task
from codestill.traces._models import Span, SpanTree

_PREVIEW = 240
# The repair prompt of codestill.structured names how it wants the answer: it tells the methods apart.
_TOOLS_REPAIR = "Reply again with the complete answer, as a call of the tool"
_JSON_REPAIR = "Reply again with the complete answer, as one JSON object"



@dataclass(frozen=True)
class RecordedCall:
    """One LLM call as the trace holds it: the request, and the reply (or the error that ended it)."""

    span_id: str
    node: str | None
    messages: tuple[Mapping[str, Any], ...]
    generations: tuple[Mapping[str, Any], ...]
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str | None


def message_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """A request as one text (role headers and contents), for previews and for finding where two differ."""
    return "\n".join(f"[{m.get('role')}] {_content(m.get('content'))}" for m in messages)


def _content(content: Any) -> str:
    return content if isinstance(content, str) else orjson.dumps(content).decode()


def request_key(node: str | None, messages: Iterable[Mapping[str, Any]]) -> str:
    """What identifies a request: its node and its messages' roles and contents (ids and names aside)."""
    body = [[m.get("role"), _content(m.get("content"))] for m in messages]
    return hashlib.sha256(orjson.dumps([node, body])).hexdigest()


def _spec_key(spec: Mapping[str, Any]) -> str:
    return orjson.dumps([spec.get("name"), spec.get("signature"), spec.get("description", "")]).decode()


def _one_line(text: str, width: int = _PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class Recording:
    """What a replay answers from; build it with ``Recording.from_tree(store.tree(run_id))``.

    ``take`` and ``hits`` are safe to call from concurrent branches (one lock; each call is short)."""

    def __init__(self, tree: SpanTree, task: Task, calls: Sequence[RecordedCall],
                 retrievals: Mapping[str, list[MemoryHit]], added: Sequence[str]) -> None:
        self.tree = tree
        self.task = task
        self.calls = tuple(calls)
        self._queues: dict[str, deque[RecordedCall]] = defaultdict(deque)
        for call in self.calls:
            self._queues[request_key(call.node, call.messages)].append(call)
        self._asked: dict[str, int] = defaultdict(int)
        self._retrievals = dict(retrievals)
        self._added = deque(added)
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.tree.root.id

    @classmethod
    def from_tree(cls, tree: SpanTree) -> Recording:
        """Index a solve run's trace; a trace without the task in its root's inputs is refused."""
        root = tree.root
        inputs = root.inputs if isinstance(root.inputs, dict) else {}
        if root.kind != "graph" or not isinstance(inputs.get("task"), dict):
            raise ReplayError(f"run {root.id[-8:]} ({root.kind} {root.name!r}) is not a solve run with its task "
                              "in the trace; replay a run that `codestill traces ls` lists as graph 'solve'.")
        try:
            task = Task.model_validate(inputs["task"])
        except ValueError as e:
            raise ReplayError(f"run {root.id[-8:]}: the task in its trace cannot be read ({e}); it was written "
                              "by another codestill version.") from None
        calls: list[tuple[float, RecordedCall]] = []
        retrievals: dict[str, list[MemoryHit]] = {}
        added: list[str] = []
        for span in tree.walk():
            if span.kind == "llm" and (call := _call(span)) is not None:
                calls.append((span.start.timestamp(), call))
            elif span.kind == "node":
                retrievals.update(_retrievals(span))
                outputs = span.outputs if isinstance(span.outputs, dict) else {}
                if isinstance(outputs.get("added"), list):
                    added += [str(i) for i in outputs["added"]]
        calls.sort(key=lambda c: c[0])  # recorded order: identical requests are answered in it
        return cls(tree, task, [c for _, c in calls], retrievals, added)

    @property
    def thread_id(self) -> str | None:
        meta = (self.tree.root.extra or {}).get("metadata") or {}
        return str(meta["thread_id"]) if meta.get("thread_id") else None

    def structured_method(self) -> str:
        """How the recorded agents asked for structured replies (``codestill.structured``'s methods)."""
        texts = [_content(m.get("content")) for c in self.calls for m in c.messages]
        if any(SCHEMA_MARKER in t for t in texts):
            return "prompt"
        if any(_TOOLS_REPAIR in t for t in texts):
            return "tools"
        if any(_JSON_REPAIR in t for t in texts):
            return "json_schema"
        return "tools"

    def take(self, node: str | None, messages: Sequence[Mapping[str, Any]], role: str) -> RecordedCall:
        """The next recorded answer to this request; ``ReplayMismatch`` when the recording has none left."""
        key = request_key(node, messages)
        with self._lock:
            self._asked[key] += 1
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
            asked = self._asked[key]
        where = f"the {role} at node {node!r}" if node else f"the {role}"
        prompt = _one_line(_content(messages[-1].get("content")) if messages else "")
        if asked > 1 and key in self._queues:
            raise ReplayMismatch(f"replay stopped: {where} asked the same request {asked} times, the recording "
                                 f"answered it {asked - 1} times; the request ends: {prompt!r}")
        raise ReplayMismatch(f"replay stopped: {where} made an LLM call the recording lacks. "
                             f"{self._closest(node, messages)} The unmatched prompt starts: {prompt!r}")

    def _closest(self, node: str | None, messages: Sequence[Mapping[str, Any]]) -> str:
        """Where the request departs from the nearest recorded one at the same node, in words."""
        same = [c for c in self.calls if c.node == node]
        if not same:
            return f"The recording has no LLM call at node {node!r}."
        now = message_text(messages)
        best, at = None, -1
        for call in same:
            was = message_text(call.messages)
            n = next((i for i, (a, b) in enumerate(zip(was, now, strict=False)) if a != b), min(len(was), len(now)))
            if n > at:
                best, at = was, n
        assert best is not None
        lo = max(0, at - 40)
        return (f"Nearest recorded request at that node ({len(same)} recorded) first differs at character {at}: "
                f"recorded {_one_line(best[lo:at + 60], 100)!r}, now {_one_line(now[lo:at + 60], 100)!r}.")

    def hits(self, spec: ModuleSpec) -> list[MemoryHit]:
        """What the recorded run's memory returned for a branch that searched for ``spec``."""
        found = self._retrievals.get(_spec_key(spec.model_dump(mode="json")))
        if found is None:
            known = ", ".join(sorted({k.split('"')[1] for k in self._retrievals})) or "none"
            raise ReplayMismatch(f"replay stopped: the memory was searched for module {spec.signature!r}, which "
                                 f"the recorded run never searched for (it searched for: {known}).")
        return list(found)

    def next_added(self) -> str | None:
        """The id the recorded run's memory gave its next added module, in order; None past the last."""
        with self._lock:
            return self._added.popleft() if self._added else None


def _call(span: Span) -> RecordedCall | None:
    """A finished LLM span as a call; a span cut off mid-call (no reply, no error) answers nothing."""
    inputs = span.inputs if isinstance(span.inputs, dict) else {}
    batches = inputs.get("messages")
    if not batches or span.status not in ("ok", "error"):
        return None
    outputs = span.outputs if isinstance(span.outputs, dict) else {}
    gens = outputs.get("generations") or []
    return RecordedCall(span_id=span.id, node=span.node, messages=tuple(batches[0]), generations=tuple(gens),
                        error=span.error if span.status == "error" else None, prompt_tokens=span.prompt_tokens,
                        completion_tokens=span.completion_tokens, model=span.model)


def _retrievals(span: Span) -> dict[str, list[MemoryHit]]:
    """spec -> hits, from a node that searched the memory once per spec and merged the hits."""
    inputs = span.inputs if isinstance(span.inputs, dict) else {}
    outputs = span.outputs if isinstance(span.outputs, dict) else {}
    specs, hits = inputs.get("specs"), outputs.get("branch_hits")
    if span.status != "ok" or not isinstance(specs, list) or not isinstance(hits, list):
        return {}
    try:
        merged = [MemoryHit.model_validate(h) for h in hits]
    except ValueError:
        return {}
    return {_spec_key(s): merged for s in specs if isinstance(s, dict)}
