"""The function-module memory (AMR-Evol's functional module database): verified helper functions in
Chroma, found again by meaning when a later task needs a similar module.

    with ModuleMemory(settings.memory) as memory:
        memory.add(module)                       # verified modules only; duplicates merge
        hits = memory.search(spec, k=3)          # MemoryHit(score in [0, 1]), best first

Scores are cosine similarities of the embedded texts (signature, docstring, description), clipped
to [0, 1]. ``memory.min_score`` (default 0.5) is the least a search returns; ``memory.near_duplicate``
(default 0.5) is where a module with an equal signature shape and code skeleton counts as the same module. Graphs and
agents depend on the ``Memory`` protocol, never on this backend. A batch run serves that protocol from
a child process (``MemoryProcess``, ``memory.process``), so the model and Chroma work beside its event loop.
"""

from __future__ import annotations

from typing import Protocol

from codestill.schemas import MemoryHit, Module, ModuleSpec
from memory._embed import (
    BUNDLED,
    BatchingEmbedder,
    Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from memory._process import MemoryProcess
from memory._store import AddResult, MemoryStats, ModuleMemory


class Memory(Protocol):
    """What the agent graph needs from a module memory."""

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]: ...

    async def aadd(self, module: Module) -> AddResult: ...

    async def amark_reused(self, ids: list[str]) -> None: ...


__all__ = [
    "BUNDLED",
    "AddResult",
    "BatchingEmbedder",
    "Embedder",
    "Memory",
    "MemoryProcess",
    "MemoryStats",
    "ModuleMemory",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "make_embedder",
]
