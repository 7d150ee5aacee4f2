"""The function-module memory (AMR-Evol's functional module database): verified helper functions in
Chroma, found again by meaning when a later task needs a similar module.

    with ModuleMemory(settings.memory) as memory:
        memory.add(module)                       # verified modules only; duplicates merge
        hits = memory.search(spec, k=3)          # MemoryHit(score in [0, 1]), best first

Scores are cosine similarities of the embedded texts (signature, docstring, description), clipped
to [0, 1]. ``memory.min_score`` (default 0.5) is the least a search returns; ``memory.near_duplicate``
(default 0.5) is where a module with an equal signature shape and code skeleton counts as the same module. Graphs and
agents depend on the ``Memory`` protocol, never on this backend; ``FakeMemory`` serves the same contract in
one process without Chroma or a model, for tests. A batch run serves that protocol from
a child process (``MemoryProcess``, ``memory.process``), so the model and Chroma work beside its event loop.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codestill.ports import AddResult, Memory

if TYPE_CHECKING:
    from memory._embed import (
        BUNDLED,
        BatchingEmbedder,
        Embedder,
        OpenAIEmbedder,
        SentenceTransformerEmbedder,
        make_embedder,
    )
    from memory._fake import FakeMemory, FakeStore
    from memory._process import MemoryProcess
    from memory._store import MemoryStats, ModuleMemory

# Loaded on first use: ``memory._fake`` (for tests) must not pull in numpy, Chroma or a model.
_WHERE = {
    "BUNDLED": "_embed", "BatchingEmbedder": "_embed", "Embedder": "_embed", "OpenAIEmbedder": "_embed",
    "SentenceTransformerEmbedder": "_embed", "make_embedder": "_embed",
    "FakeMemory": "_fake", "FakeStore": "_fake",
    "MemoryProcess": "_process",
    "MemoryStats": "_store", "ModuleMemory": "_store",
}

__all__ = [
    "BUNDLED",
    "AddResult",
    "BatchingEmbedder",
    "Embedder",
    "FakeMemory",
    "FakeStore",
    "Memory",
    "MemoryProcess",
    "MemoryStats",
    "ModuleMemory",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "make_embedder",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
