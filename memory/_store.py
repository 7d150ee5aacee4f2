"""``ModuleMemory``: verified function modules in a Chroma collection, found again by meaning.

Adding: exact duplicates (same normalised-AST hash, so the same id) and near duplicates merge their
counts into the stored record instead of making a second one. A near duplicate has the same signature
shape, a similarity >= ``near_duplicate``, and the same code skeleton (``tools.code.skeleton_hash``:
the code with every name it defines erased). The skeleton guard is there because embeddings alone
cannot tell opposites apart: bisect_left/bisect_right or getincrementalencoder/decoder in the stdlib
are 0.98 similar with equal signatures, while a renamed copy of a function can fall to 0.5.

Within a process a lock makes check-then-insert atomic. Between processes sharing a server, exact
duplicates cannot race (same id), and an insert is followed by a look at every live near duplicate of
it: the oldest survives and the others become aliases of it (``memory/_meta.py``), so whichever
process looks last settles the race, and no record holding counts is ever deleted.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codestill.config import MemoryConfig
from codestill.ports import AddResult
from codestill.schemas import MemoryHit, Module, ModuleSpec, StoredModule
from memory import _hubness
from memory._client import open_store
from memory._coalesce import Coalescer
from memory._embed import BatchingEmbedder, Embedder, make_embedder
from memory._meta import (
    COUNTS,
    Count,
    Incoming,
    add_counts,
    admit,
    alias_of,
    count_key,
    from_metadata,
    order_key,
    spec_text,
    to_metadata,
)
from memory._rank import CANDIDATES, relevance

# Retrieval counts are written by the first search after this many records have some pending or this
# long after the first, by any read of counts through this object, and by close: a crash loses at
# most those. Reuse counts (mark_reused) are written at once.
PENDING_IDS = 256
PENDING_S = 5.0


@dataclass(frozen=True)
class MemoryStats:
    where: str
    collection: str
    embedding: str
    records: int
    times_added: int
    times_retrieved: int
    times_reused: int


def _merge(deltas: dict[str, dict[Count, int]], id_: str, counts: dict[Count, int]) -> None:
    into = deltas.setdefault(id_, dict.fromkeys(COUNTS, 0))
    for c in COUNTS:
        into[c] += counts[c]


class ModuleMemory:
    """Open with ``ModuleMemory(config)``; ``create=False`` refuses a store that does not exist yet.
    Methods are thread-safe; the ``a``-prefixed ones run them off the event loop."""

    def __init__(self, config: MemoryConfig | None = None, *, embedder: Embedder | None = None,
                 create: bool = True, parent: int | None = None) -> None:
        """``parent``: for a memory process, the runner it serves (see ``memory/_client.py``'s lock)."""
        self.config = config or MemoryConfig()
        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        self.embedder = BatchingEmbedder(embedder or make_embedder(self.config.embedding, key))
        self._opened = open_store(self.config, self.embedder.name, create=create, parent=parent)
        self._col = self._opened.collection
        self.writer = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        # Retrieval counts wait here and are written in batches (see _count): a Chroma metadata update
        # costs 20-35 ms on the 2-core machine, more than the whole search without it.
        self._pending: dict[str, dict[Count, int]] = {}
        self._pending_since = 0.0
        self._adds: Coalescer[Module, AddResult] = Coalescer(self.add_many)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return self._opened.where

    def close(self) -> None:
        """Write the retrieval counts still pending and release the store."""
        try:
            self.flush()
        finally:
            if self._opened.lock is not None:
                self._opened.lock.close()
                self._opened.lock = None

    def __enter__(self) -> ModuleMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- adding --------------------------------------------------------------------------------
    def add(self, module: Module) -> AddResult:
        """Add one module. Concurrent calls are one ``add_many`` (a group commit): an add's store
        reads and writes cost the same for one module as for sixty, and they run under the lock."""
        return self._adds([module])[0]

    def add_many(self, modules: Sequence[Module | StoredModule]) -> list[AddResult]:
        """Add a batch (a ``StoredModule``, as an import reads it, keeps its counts and creation time)."""
        results, items = admit(modules, self.config.verified_only)
        if items:
            # Embedding is the slow part of an add: done before the lock, so concurrent adds overlap
            # (and share model calls); a duplicate found under the lock just leaves its vector unused.
            known = self._get_meta(list(dict.fromkeys(it.id for _, it in items)))
            fresh = list(dict.fromkeys(it.text for _, it in items if it.id not in known))
            vectors = dict(zip(fresh, self.embedder.embed(fresh), strict=True)) if fresh else {}
            with self._lock:
                deltas: dict[str, dict[Count, int]] = {}
                for i, r in self._add_locked(items, deltas, vectors):
                    results[i] = r
                self._flush(deltas)
        return [r for r in results if r is not None]

    def _add_locked(self, items: list[tuple[int, Incoming]], deltas: dict[str, dict[Count, int]],
                    vectors: dict[str, np.ndarray]) -> Iterator[tuple[int, AddResult]]:
        # 1. Exact duplicates, in the batch and in the store: the id is the hash.
        first: dict[str, Incoming] = {}
        index: dict[int, int] = {}  # id(Incoming) -> its position in the caller's batch
        for i, it in items:
            if it.id in first:
                first[it.id].merge(it)
                yield i, AddResult("duplicate", it.id)
            else:
                first[it.id] = it
                index[id(it)] = i
        for id_, meta in self._get_meta(list(first)).items():
            it = first.pop(id_)
            _merge(deltas, id_, it.counts)  # on the record itself: readers fold aliases into their survivor
            yield index[id(it)], AddResult("duplicate", self._root(id_, meta)[0])
        fresh = list(first.values())
        if not fresh:
            return
        # 2. Near duplicates of stored records.
        missing = [it.text for it in fresh if it.text not in vectors]  # stored since, then removed: rare
        if missing:
            vectors = {**vectors, **dict(zip(missing, self.embedder.embed(missing), strict=True))}
        found = np.stack([vectors[it.text] for it in fresh])
        keep: list[tuple[Incoming, np.ndarray]] = []
        for it, vec, near in zip(fresh, found, self._near(fresh, found), strict=True):
            if near:
                _merge(deltas, near[0][0], it.counts)
                yield index[id(it)], AddResult("near_duplicate", near[0][0])
            else:
                keep.append((it, vec))
        # 3. Near duplicates inside the batch: the earlier one takes the later one's counts.
        kept: list[tuple[Incoming, np.ndarray]] = []
        for it, vec in keep:
            twin = next((k for k, kv in kept if k.skeleton == it.skeleton and k.info.shape == it.info.shape
                         and float(kv @ vec) >= self.config.near_duplicate), None)
            if twin is not None:
                twin.merge(it)
                yield index[id(it)], AddResult("near_duplicate", twin.id)
            else:
                kept.append((it, vec))
        if not kept:
            return
        # 4. Insert, in batches Chroma accepts.
        step = max(1, min(int(self._opened.client.get_max_batch_size()), 4096))
        lists, crowded = _hubness.neighbourhoods(self._col, np.stack([v for _, v in kept]))
        for s in range(0, len(kept), step):
            chunk = kept[s:s + step]
            self._col.add(ids=[it.id for it, _ in chunk], embeddings=np.stack([v for _, v in chunk]),
                          documents=[it.text for it, _ in chunk],
                          metadatas=[{**to_metadata(it, self.writer), _hubness.KEY: nbrs}
                                     for (it, _), nbrs in zip(chunk, lists[s:s + step], strict=True)])
        ids = list(crowded)
        for s in range(0, len(ids), step):
            self._col.update(ids=ids[s:s + step], metadatas=[{_hubness.KEY: crowded[i]} for i in ids[s:s + step]])
        survivors = self._reconcile(kept, deltas) if self._opened.shared else {it.id: it.id for it, _ in kept}
        for it, _ in kept:
            target = survivors[it.id]
            yield index[id(it)], AddResult("added", it.id) if target == it.id \
                else AddResult("near_duplicate", target)

    def _reconcile(self, kept: list[tuple[Incoming, np.ndarray]],
                   deltas: dict[str, dict[Count, int]]) -> dict[str, str]:
        """After inserting into a shared server: each inserted record and its live near duplicates
        (some may have been inserted by another process since the check) are settled by one rule, the
        oldest survives and the others become its aliases. An add that Chroma ignored because another
        process had just inserted the same id is counted on that record. Returns id -> survivor."""
        mine = [it for it, _ in kept]
        metas = self._get_meta([it.id for it in mine])
        out: dict[str, str] = {}
        aliases: dict[str, str] = {}
        for it, near in zip(mine, self._near(mine, np.stack([v for _, v in kept]), skip_self=True), strict=True):
            meta = metas.get(it.id)
            if meta is None:  # removed by someone in the meantime
                out[it.id] = it.id
                continue
            if count_key("added", self.writer) not in meta:
                _merge(deltas, it.id, it.counts)
            if alias_of(meta):  # another process has settled it already
                out[it.id] = self._root(it.id, meta)[0]
                continue
            group = [(it.id, meta)] + [(id_, m) for id_, m, _ in near]
            root = min(group, key=lambda g: order_key(g[1], g[0]))[0]
            aliases.update({id_: root for id_, _ in group if id_ != root})
            out[it.id] = root
        if aliases:
            self._col.update(ids=list(aliases), metadatas=[{"alias": r} for r in aliases.values()])
            roots = sorted(set(aliases.values()))
            self._col.update(ids=roots, metadatas=[{"merged": True}] * len(roots))
        return out

    def _near(self, items: list[Incoming], vectors: np.ndarray,
              skip_self: bool = False) -> list[list[tuple[str, dict[str, Any], float]]]:
        """For each item, the live stored records with the same skeleton and signature shape whose
        similarity is at or above the threshold, most similar first."""
        got = self._col.get(where={"skeleton": {"$in": sorted({it.skeleton for it in items})}},
                            include=["embeddings", "metadatas"])
        by_skeleton: dict[str, list[tuple[str, dict[str, Any], np.ndarray]]] = {}
        for id_, meta, vec in zip(got["ids"], got["metadatas"], got["embeddings"], strict=True):
            if not alias_of(meta):
                by_skeleton.setdefault(meta["skeleton"], []).append((id_, dict(meta), np.asarray(vec)))
        out = []
        for it, vec in zip(items, vectors, strict=True):
            near = [(id_, meta, float(other @ vec)) for id_, meta, other in by_skeleton.get(it.skeleton, [])
                    if meta.get("shape") == it.info.shape and not (skip_self and id_ == it.id)]
            out.append(sorted((n for n in near if n[2] >= self.config.near_duplicate), key=lambda n: -n[2]))
        return out

    # -- aliases -------------------------------------------------------------------------------
    def _root(self, id_: str, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The live record an alias was merged into (aliases point to older records: no cycles)."""
        while alias_of(meta):
            target = alias_of(meta)
            got = self._get_meta([target]).get(target)
            if got is None:  # its survivor was removed: the alias stands for itself
                break
            id_, meta = target, got
        return id_, meta

    def _members(self, roots: list[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """For each live record, the records merged into it (directly or through other aliases)."""
        owner = {r: r for r in roots}
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {r: [] for r in roots}
        frontier = list(roots)
        while frontier:
            got = self._col.get(where={"alias": {"$in": frontier}}, include=["metadatas"])
            frontier = []
            for id_, meta in zip(got["ids"], got["metadatas"], strict=True):
                if id_ not in owner:
                    owner[id_] = owner[alias_of(meta)]
                    out[owner[id_]].append((id_, dict(meta)))
                    frontier.append(id_)
        return out

    def _stored(self, pairs: list[tuple[str, dict[str, Any]]]) -> list[StoredModule]:
        """Live records as ``StoredModule``s, with the counts of records merged into them."""
        merged = self._members([id_ for id_, meta in pairs if meta.get("merged")])
        out = []
        for id_, meta in pairs:
            extra = dict.fromkeys(COUNTS, 0)
            for _, m in merged.get(id_, []):
                add_counts(extra, m)
            out.append(from_metadata(id_, meta, extra))
        return out

    # -- counts --------------------------------------------------------------------------------
    def _get_meta(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        got = self._col.get(ids=ids, include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"], strict=True)}

    def _flush(self, deltas: dict[str, dict[Count, int]]) -> None:
        # Only this writer's keys are touched (see memory/_meta.py), and the caller holds the lock, so
        # reading them and writing them back loses nothing.
        if not deltas:
            return
        metas = self._get_meta(list(deltas))
        ids, updates = [], []
        for id_, meta in metas.items():
            ids.append(id_)
            updates.append({count_key(c, self.writer): int(meta.get(count_key(c, self.writer), 0)) + n
                            for c, n in deltas[id_].items() if n})
        if ids:
            self._col.update(ids=ids, metadatas=updates)

    def _count(self, ids: Iterable[str], count: Count, now: bool) -> dict[str, dict[Count, int]]:
        """Count one ``count`` for each id; returns the counts of these ids that were not yet written
        before this call wrote anything (what a record read before the call lacks)."""
        with self._lock:
            if not self._pending:
                self._pending_since = time.monotonic()
            ids = list(ids)
            for id_ in ids:
                _merge(self._pending, id_, {**dict.fromkeys(COUNTS, 0), count: 1})
            unwritten = {id_: dict(self._pending[id_]) for id_ in ids}
            if now or len(self._pending) >= PENDING_IDS or time.monotonic() - self._pending_since >= PENDING_S:
                self._flush_pending()
            return unwritten

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, {}
        self._flush(pending)

    def flush(self) -> None:
        """Write pending retrieval counts now (``close`` does; they are also written every few seconds)."""
        with self._lock:
            if self._pending:
                self._flush_pending()

    def mark_reused(self, ids: Iterable[str]) -> None:
        """Count that these modules went into an accepted solution (written at once)."""
        self._count(ids, "reused", now=True)

    # -- finding -------------------------------------------------------------------------------
    def search(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
               count: bool = True) -> list[MemoryHit]:
        """Up to ``k`` modules for ``spec``, best first, with similarity >= ``min_score`` (default
        ``memory.min_score``). ``count`` adds one to each returned module's times retrieved."""
        hits = self._query(spec_text(spec.signature, spec.description), k, min_score, spec.name)
        if count and hits:
            unwritten = self._count([h.module.id for h in hits], "retrieved", now=False)
            hits = [h.model_copy(update={"module": h.module.model_copy(update={
                f"times_{c}": getattr(h.module, f"times_{c}") + n for c, n in unwritten[h.module.id].items()})})
                for h in hits]
        return hits

    def search_text(self, query: str, k: int = 5, min_score: float = 0.0) -> list[MemoryHit]:
        """For people: free text, nothing counted."""
        return self._query(query, k, min_score, query[:80])

    def _query(self, text: str, k: int, min_score: float | None, label: str) -> list[MemoryHit]:
        floor = self.config.min_score if min_score is None else min_score
        n = self._col.count()
        if n == 0 or k <= 0:
            return []
        vec = self.embedder.embed([text])
        # Twice k at least: an alias found stands for its survivor, which may be among the hits already;
        # CANDIDATES for the re-ranking by word overlap (``_rank``) and neighbourhood (``_hubness``).
        w = self.config.lexical_weight
        want = max(2 * k, CANDIDATES) if w > 0 or self.config.hubness > 0 else 2 * k
        res = self._col.query(query_embeddings=vec, n_results=min(want, n),
                              include=["metadatas", "distances", "documents"])
        # Chroma's cosine distance is 1 - cos. The score: relevance (``_rank``) adjusted for crowded
        # neighbourhoods (``_hubness``).
        metas = [dict(m) for m in res["metadatas"][0]]
        cosines = [1.0 - float(d) for d in res["distances"][0]]
        scores = _hubness.adjusted([relevance(c, text, doc or "", w) for c, doc in zip(cosines, res["documents"][0],
                                                                                       strict=True)],
                                   cosines, [_hubness.density(m) for m in metas], (1 - w) * self.config.hubness)
        ranked = sorted(zip(scores, res["ids"][0], metas, strict=True), key=lambda t: -t[0])
        found: dict[str, tuple[dict[str, Any], float]] = {}
        for score, id_, meta in ranked:
            if score < floor or len(found) == k:
                break
            root, root_meta = self._root(id_, meta) if alias_of(meta) else (id_, meta)
            found.setdefault(root, (root_meta, score))
        modules = self._stored([(id_, meta) for id_, (meta, _) in found.items()])
        return [MemoryHit(spec_name=label, module=m, score=score) for m, (_, score) in zip(modules, found.values(), strict=True)]

    def get(self, id_: str) -> StoredModule | None:
        """The record, or the one it was merged into."""
        self.flush()
        meta = self._get_meta([id_]).get(id_)
        return self._stored([self._root(id_, meta)])[0] if meta is not None else None

    def _aliases(self) -> dict[str, dict[str, Any]]:
        got = self._col.get(where={"alias": {"$ne": ""}}, include=["metadatas"])
        return {i: dict(m) for i, m in zip(got["ids"], got["metadatas"], strict=True)}

    def __len__(self) -> int:
        return self._col.count() - len(self._aliases())

    def iter_all(self, page: int = 1000) -> Iterator[StoredModule]:
        """Every live record, counts of its aliases folded in."""
        self.flush()
        aliases = self._aliases()
        extra: dict[str, dict[Count, int]] = {}
        for id_, meta in aliases.items():
            root = id_
            while root in aliases:
                root = alias_of(aliases[root])
            add_counts(extra.setdefault(root, dict.fromkeys(COUNTS, 0)), meta)
        offset = 0
        while True:
            got = self._col.get(include=["metadatas"], limit=page, offset=offset)
            if not got["ids"]:
                return
            yield from (from_metadata(i, m, extra.get(i)) for i, m in zip(got["ids"], got["metadatas"], strict=True)
                        if not alias_of(m))
            offset += len(got["ids"])

    def remove(self, id_: str) -> bool:
        """Remove a record (and the records merged into it)."""
        with self._lock:
            meta = self._get_meta([id_]).get(id_)
            if meta is None:
                return False
            root = self._root(id_, meta)[0]
            self._col.delete(ids=[root] + [i for i, _ in self._members([root])[root]])
            return True

    def stats(self) -> MemoryStats:
        sums = dict.fromkeys(COUNTS, 0)
        for m in self.iter_all():
            sums["added"] += m.times_added
            sums["retrieved"] += m.times_retrieved
            sums["reused"] += m.times_reused
        return MemoryStats(where=self.where, collection=self.config.collection, embedding=self.embedder.name,
                           records=len(self), times_added=sums["added"], times_retrieved=sums["retrieved"],
                           times_reused=sums["reused"])

    # -- async -------------------------------------------------------------------------------
    async def aadd(self, module: Module) -> AddResult:
        return await asyncio.to_thread(self.add, module)

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]:
        return await asyncio.to_thread(self.search, spec, k, min_score, count)

    async def asearch_text(self, query: str, k: int = 5, min_score: float = 0.0) -> list[MemoryHit]:
        return await asyncio.to_thread(self.search_text, query, k, min_score)

    async def amark_reused(self, ids: Iterable[str]) -> None:
        await asyncio.to_thread(self.mark_reused, list(ids))
