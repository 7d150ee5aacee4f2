"""The LangChain tracer: each callback appends one small tuple of references; a thread does the rest.

Why not BaseTracer's own machinery: it builds a pydantic ``Run`` per span and serialises every prompt
message on the caller's thread (~65 us a span in ``bench/trace_span_cost.py``, ~140 us inside a
LangGraph run), all on the event loop that 64 concurrent graphs share. Here a callback costs a tuple
and a ``deque.append`` (~2-3 us a span); ``_writer`` turns the tuples into rows on its own thread.
It stays a ``BaseTracer`` subclass because LangGraph hands tracers (and only tracers) a node's
``trace_inputs`` / trace-policy payload instead of its raw input.

The ``on_*`` methods return None, not BaseTracer's ``Run``: the callback managers ignore the value.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from pathlib import Path
from time import time
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

from codestill.traces._writer import END, ERROR, LLM_END, START, TracerStats, Writer

if TYPE_CHECKING:
    from tenacity import RetryCallState


class SqliteTracer(BaseTracer):
    """Persists every run tree to the SQLite trace store at ``path`` (created if missing).

    Use it as ``config={"callbacks": [tracer]}``; ``flush()`` waits until what was traced so far is
    committed, ``close()`` (or leaving a ``with`` block) also stops the writer thread. Strings in
    ``redact`` (API keys) are replaced by ``[redacted]`` in everything stored. Writing never raises
    into the graph: failures are logged and counted in ``stats``.
    """

    # Called on the caller's thread / event loop, not in an executor: a callback is about a
    # microsecond, an executor hop would cost far more than the work.
    run_inline = True

    def __init__(self, path: str | Path, *, redact: Sequence[str] = ()) -> None:
        super().__init__()
        self.path = Path(path)
        self._writer = Writer(self.path, redact)
        # The bound append of a thread-safe deque: the whole hot path.
        self._push = self._writer.events.append
        # Drains and closes at interpreter exit if the owner forgot; holds no reference to self.
        self._finalizer = weakref.finalize(self, self._writer.close)

    @property
    def stats(self) -> TracerStats:
        """Spans written, writer errors, and events still queued."""
        return self._writer.stats()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything traced before this call is committed; False if it took too long."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued, stop the writer thread, and close the file (idempotent)."""
        self._push = self._writer.drop
        self._finalizer()

    def __enter__(self) -> SqliteTracer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _persist_run(self, run: Run) -> None:
        """Unused: no ``Run`` objects are built (see the module docstring)."""

    # ---- starts -------------------------------------------------------------------------------
    # "type: ignore[override]": these return None where BaseTracer returns its Run (see the docstring).

    def on_chain_start(  # type: ignore[override]
            self, serialized: dict[str, Any], inputs: dict[str, Any], *, run_id: UUID,
            tags: list[str] | None = None, parent_run_id: UUID | None = None,
            metadata: dict[str, Any] | None = None, run_type: str | None = None, name: str | None = None,
            **kwargs: Any) -> None:
        self._push((START, run_id, parent_run_id, "chain", name, serialized, inputs, metadata, tags, time(),
                    None))

    def on_chat_model_start(  # type: ignore[override]
            self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
            tags: list[str] | None = None, parent_run_id: UUID | None = None,
            metadata: dict[str, Any] | None = None, name: str | None = None, **kwargs: Any) -> None:
        self._push((START, run_id, parent_run_id, "llm", name, serialized, {"messages": messages}, metadata,
                    tags, time(), kwargs.get("invocation_params")))

    def on_llm_start(  # type: ignore[override]
            self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
            tags: list[str] | None = None, parent_run_id: UUID | None = None,
            metadata: dict[str, Any] | None = None, name: str | None = None, **kwargs: Any) -> None:
        self._push((START, run_id, parent_run_id, "llm", name, serialized, {"prompts": prompts}, metadata,
                    tags, time(), kwargs.get("invocation_params")))

    def on_tool_start(  # type: ignore[override]
            self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
            tags: list[str] | None = None, parent_run_id: UUID | None = None,
            metadata: dict[str, Any] | None = None, name: str | None = None,
            inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        payload = inputs if isinstance(inputs, dict) else {"input": input_str}
        self._push((START, run_id, parent_run_id, "tool", name, serialized, payload, metadata, tags, time(),
                    None))

    def on_retriever_start(  # type: ignore[override]
            self, serialized: dict[str, Any], query: str, *, run_id: UUID,
            parent_run_id: UUID | None = None, tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None, name: str | None = None, **kwargs: Any) -> None:
        self._push((START, run_id, parent_run_id, "retriever", name, serialized, {"query": query}, metadata,
                    tags, time(), None))

    # ---- ends ---------------------------------------------------------------------------------

    def on_chain_end(  # type: ignore[override]
            self, outputs: dict[str, Any], *, run_id: UUID, inputs: dict[str, Any] | None = None,
            **kwargs: Any) -> None:
        self._push((END, run_id, outputs, time()))

    def on_llm_end(  # type: ignore[override]
            self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._push((LLM_END, run_id, response, time()))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        self._push((END, run_id, {"output": output}, time()))

    def on_retriever_end(  # type: ignore[override]
            self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any) -> None:
        self._push((END, run_id, {"documents": documents}, time()))

    def on_chain_error(  # type: ignore[override]
            self, error: BaseException, *, inputs: dict[str, Any] | None = None, run_id: UUID,
            **kwargs: Any) -> None:
        self._push((ERROR, run_id, error, time()))

    def on_llm_error(  # type: ignore[override]
            self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._push((ERROR, run_id, error, time()))

    def on_tool_error(  # type: ignore[override]
            self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._push((ERROR, run_id, error, time()))

    def on_retriever_error(  # type: ignore[override]
            self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._push((ERROR, run_id, error, time()))

    # Streaming tokens and retries are not stored: per-token events would multiply the hot-path cost.
    # (BaseTracer's own versions would look the run up in a run map this tracer does not keep.)

    def on_llm_new_token(  # type: ignore[override]
            self, token: str | list[str | dict[str, Any]], *,
            chunk: GenerationChunk | ChatGenerationChunk | None = None, run_id: UUID,
            parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        pass

    def on_retry(  # type: ignore[override]
            self, retry_state: RetryCallState, *, run_id: UUID, **kwargs: Any) -> None:
        pass
