"""``FakeMemory``: the module memory's contract in one process, without Chroma or a model. For tests.

What is the same as ``ModuleMemory`` (the conformance suites in tests/memory run over both): records in
the same layout (``memory/_meta.py``: the id from the normalised-AST hash, per-writer counts, what a
``StoredModule`` holds), the same exact duplicates, the same near-duplicate rule (equal signature shape,
equal code skeleton, similarity >= ``near_duplicate``; inside a batch too), the same refusals
(unverified, unparsable), the same scores (``memory/_rank.py``'s relevance: similarity clipped to
[0, 1] blended with word overlap), ``min_score`` (default ``memory.min_score``) and ``k``, best first,
the same retrieval and reuse counts, export and import through ``StoredModule``.

What differs:

- **The embedding** is a bag of words, no model: a text's content words (``_rank.content_words``:
  identifiers split at ``_`` and case changes, lower-cased, stop words and a plural ``s`` dropped), and
  the similarity of two texts is the cosine of those sets, ``|A & B| / sqrt(|A| |B|)``. Texts that say
  the same thing in other words are not similar here; the same words in another order are identical.
  Deterministic, pure Python, nothing loaded.
- **No hubness discount** (``memory/_hubness.py``): a record's neighbourhood does not lower its score.
- **Storage** is a ``FakeStore`` in this process's memory: ``FakeMemory`` objects opened on the same
  store see each other's records (what a Chroma collection is to ``ModuleMemory``); nothing is written
  to disk and nothing survives the process. Counts are written at once (there is nothing to batch).
"""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from codestill.config import MemoryConfig
from codestill.ports import AddResult
from codestill.schemas import MemoryHit, Module, ModuleSpec, StoredModule
from memory._meta import (
    COUNTS,
    Count,
    Incoming,
    admit,
    count_key,
    from_metadata,
    spec_text,
    to_metadata,
)
from memory._rank import content_words, relevance

EMBEDDING = "fake:bag-of-words"


def similarity(a: str, b: str) -> float:
    """The fake embedding's cosine similarity of two texts, in [0, 1]."""
    wa, wb = content_words(a), content_words(b)
    return len(wa & wb) / math.sqrt(len(wa) * len(wb)) if wa and wb else 0.0


@dataclass
class FakeStore:
    """The records that the ``FakeMemory`` objects opened on it share: id -> metadata in
    ``memory/_meta.py``'s layout, id -> embedded text. Insertion order is kept."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


class FakeMemory:
    """``ModuleMemory``'s interface (sync and async) over a ``FakeStore`` (default: a new, private one).
    Thread-safe; the ``a``-prefixed methods run in the caller's event loop (nothing here blocks)."""

    def __init__(self, config: MemoryConfig | None = None, *, store: FakeStore | None = None) -> None:
        self.config = config or MemoryConfig()
        self.store = store if store is not None else FakeStore()
        self.writer = uuid.uuid4().hex[:12]

    @property
    def where(self) -> str:
        return f"in-process fake store {id(self.store):#x}"

    @property
    def embedding(self) -> str:
        return EMBEDDING

    def close(self) -> None:
        """Nothing to write: counts are in the store already."""

    def flush(self) -> None:
        """Nothing pending: counts are written at once."""

    def __enter__(self) -> FakeMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- adding --------------------------------------------------------------------------------
    def add(self, module: Module) -> AddResult:
        return self.add_many([module])[0]

    def add_many(self, modules: Sequence[Module | StoredModule]) -> list[AddResult]:
        """Add a batch (a ``StoredModule``, as an import reads it, keeps its counts and creation time)."""
        results, items = admit(modules, self.config.verified_only)
        with self.store.lock:
            for i, r in self._add_locked(items):
                results[i] = r
        return [r for r in results if r is not None]

    def _add_locked(self, items: list[tuple[int, Incoming]]) -> Iterator[tuple[int, AddResult]]:
        records = self.store.records
        before = list(records)  # what was stored before this batch
        kept: list[str] = []  # this batch's new records, in order
        for i, it in items:
            # 1. Exact duplicates, in the store (this batch's earlier ones included): the id is the hash.
            if it.id in records:
                self._count(it.id, it.counts)
                yield i, AddResult("duplicate", it.id)
                continue
            # 2. Near duplicates of stored records, then of this batch's earlier ones (those are stored
            # already here, but ``ModuleMemory`` checks the store before the batch: the same order).
            near = self._near(it, [id_ for id_ in before if id_ in records]) or self._near(it, kept)
            if near:
                self._count(near, it.counts)
                yield i, AddResult("near_duplicate", near)
                continue
            # 3. A record of its own.
            records[it.id] = to_metadata(it, self.writer)
            self.store.texts[it.id] = it.text
            kept.append(it.id)
            yield i, AddResult("added", it.id)

    def _near(self, it: Incoming, ids: list[str]) -> str | None:
        """The most similar of ``ids`` that is a near duplicate of ``it``, if any."""
        best, best_sim = None, -1.0
        for id_ in ids:
            meta = self.store.records[id_]
            if meta["skeleton"] != it.skeleton or meta.get("shape") != it.info.shape:
                continue
            sim = similarity(self.store.texts[id_], it.text)
            if sim >= self.config.near_duplicate and sim > best_sim:
                best, best_sim = id_, sim
        return best

    def _count(self, id_: str, counts: dict[Count, int]) -> None:
        meta = self.store.records.get(id_)
        if meta is None:
            return
        for c in COUNTS:
            if counts.get(c):
                key = count_key(c, self.writer)
                meta[key] = int(meta.get(key, 0)) + counts[c]

    # -- counts --------------------------------------------------------------------------------
    def mark_reused(self, ids: Iterable[str]) -> None:
        """Count that these modules went into an accepted solution."""
        with self.store.lock:
            for id_ in ids:
                self._count(id_, {"reused": 1})

    # -- finding -------------------------------------------------------------------------------
    def search(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
               count: bool = True) -> list[MemoryHit]:
        """Up to ``k`` modules for ``spec``, best first, with a score >= ``min_score`` (default
        ``memory.min_score``). ``count`` adds one to each returned module's times retrieved."""
        with self.store.lock:
            found = self._query(spec_text(spec.signature, spec.description), k, min_score)
            if count:
                for id_, _ in found:
                    self._count(id_, {"retrieved": 1})
            return self._hits(found, spec.name)

    def search_text(self, query: str, k: int = 5, min_score: float = 0.0) -> list[MemoryHit]:
        """For people: free text, nothing counted."""
        with self.store.lock:
            return self._hits(self._query(query, k, min_score), query[:80])

    def _query(self, text: str, k: int, min_score: float | None) -> list[tuple[str, float]]:
        floor = self.config.min_score if min_score is None else min_score
        if k <= 0:
            return []
        w = self.config.lexical_weight
        scored = [(id_, relevance(similarity(text, doc), text, doc, w)) for id_, doc in self.store.texts.items()]
        scored.sort(key=lambda t: -t[1])  # stable: equal scores in the order they were added
        return [(id_, score) for id_, score in scored if score >= floor][:k]

    def _hits(self, found: list[tuple[str, float]], label: str) -> list[MemoryHit]:
        return [MemoryHit(spec_name=label, module=from_metadata(id_, self.store.records[id_]), score=score)
                for id_, score in found]

    def get(self, id_: str) -> StoredModule | None:
        with self.store.lock:
            meta = self.store.records.get(id_)
            return from_metadata(id_, meta) if meta is not None else None

    def __len__(self) -> int:
        return len(self.store.records)

    def iter_all(self) -> Iterator[StoredModule]:
        with self.store.lock:
            records = [from_metadata(id_, meta) for id_, meta in self.store.records.items()]
        yield from records

    def remove(self, id_: str) -> bool:
        with self.store.lock:
            if id_ not in self.store.records:
                return False
            del self.store.records[id_], self.store.texts[id_]
            return True

    # -- async -------------------------------------------------------------------------------
    async def aadd(self, module: Module) -> AddResult:
        await asyncio.sleep(0)  # a turn of the loop, as a real store's call gives other tasks
        return self.add(module)

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]:
        await asyncio.sleep(0)
        return self.search(spec, k, min_score, count)

    async def asearch_text(self, query: str, k: int = 5, min_score: float = 0.0) -> list[MemoryHit]:
        await asyncio.sleep(0)
        return self.search_text(query, k, min_score)

    async def amark_reused(self, ids: Iterable[str]) -> None:
        await asyncio.sleep(0)
        self.mark_reused(list(ids))
