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

from codestill.ports import AddResult, Memory
from memory._embed import (
    BUNDLED,
    BatchingEmbedder,
    Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from memory._process import MemoryProcess
from memory._store import MemoryStats, ModuleMemory

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
