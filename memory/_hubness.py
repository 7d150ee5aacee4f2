"""Hubness reduction: a record in a crowded neighbourhood loses some rank to one standing apart.

Nearest-neighbour search with dense embeddings has *hubs*: records that sit near many queries only
because they sit near many other records. In a memory of 100,000 helpers, the ~150 that merely name
``shlex.split`` ("Apply filecmp.cmp to the arguments, then shlex.split to its result") crowd round
that topic, and a query paraphrasing what ``shlex.split`` does meets them before the function
itself. CSLS (Conneau et al., 2018, "Word translation without parallel data") scores by
``2 cos(q, d) - r(q) - r(d)``, where ``r(d)`` is ``d``'s mean similarity to its nearest neighbours and
``r(q)`` the query's to its nearest records; the memory scores a hit by its relevance
(``memory/_rank.py``) less ``memory.hubness * (1 - w) * (r(d) - r(q))``: a record as crowded as the
query's surroundings keeps its relevance, a crowded one loses, a lone one gains.

``r`` needs each record's similarities to its ``NEIGHBOURS`` nearest records, kept in its metadata
(``KEY``: a comma-separated list, most similar first). An add looks up the new records' nearest
neighbours (one batched query) and updates the stored neighbours whose list it enters, so an old
record's crowd is seen as it grows. Approximate by design: a stored record learns of a newcomer only
when it is among the newcomer's ``REACH`` nearest (nearness is not symmetric), removals do not shrink lists,
and two processes updating the same record of a shared server at once may lose one update. Records
written before lists were kept have none and are ranked as the average candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from memory._meta import alias_of

NEIGHBOURS = 5
# A newcomer updates the stored records among its REACH nearest: nearness is not symmetric, and a
# record for which the newcomer is among the five nearest is often further down the newcomer's list.
REACH = 4 * NEIGHBOURS
KEY = "nbrs"


def parse(value: Any) -> list[float]:
    return [float(x) for x in str(value).split(",") if x]


def fmt(sims: Iterable[float]) -> str:
    return ",".join(f"{s:.4f}" for s in sims)


def merged(current: Sequence[float], new: Iterable[float]) -> list[float]:
    """The ``NEIGHBOURS`` highest of both, most similar first."""
    return sorted([*current, *new], reverse=True)[:NEIGHBOURS]


def density(meta: dict[str, Any]) -> float | None:
    """The record's mean similarity to its nearest neighbours; None if unknown."""
    if KEY not in meta:
        return None
    sims = parse(meta[KEY])
    return sum(sims) / len(sims) if sims else 0.0


def neighbourhoods(col: Any, vectors: np.ndarray) -> tuple[list[str], dict[str, str]]:
    """For records about to be inserted (unit ``vectors``): each one's neighbour list (among the stored
    live records and each other), and the new lists of stored records they enter (id -> value)."""
    lists: list[list[float]] = [[] for _ in vectors]
    stored: dict[str, tuple[list[float], list[float]]] = {}  # id -> (its list, similarities of newcomers)
    n = col.count()
    if n:
        res = col.query(query_embeddings=vectors, n_results=min(REACH, n), include=["metadatas", "distances"])
        for mine, ids, metas, dists in zip(lists, res["ids"], res["metadatas"], res["distances"], strict=True):
            for id_, meta, dist in zip(ids, metas, dists, strict=True):
                if alias_of(meta):
                    continue
                sim = 1.0 - float(dist)  # Chroma's cosine distance is 1 - cos
                mine.append(sim)  # merged() keeps the nearest NEIGHBOURS
                if KEY in meta:  # a record from before lists were kept stays unknown, not half-known
                    stored.setdefault(id_, (parse(meta[KEY]), []))[1].append(sim)
    if len(vectors) > 1:
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        for mine, row in zip(lists, sims, strict=True):
            mine.extend(float(s) for s in np.sort(row)[::-1][:NEIGHBOURS] if np.isfinite(s))
    changed = {}
    for id_, (current, new) in stored.items():
        if (after := merged(current, new)) != current:
            changed[id_] = fmt(after)
    return [fmt(merged([], mine)) for mine in lists], changed


def adjusted(relevances: Sequence[float], cosines: Sequence[float], densities: Sequence[float | None],
             weight: float) -> list[float]:
    """Scores in [0, 1]: each relevance less ``weight`` times how much denser its record's neighbourhood
    is than the query's (its mean similarity to the ``NEIGHBOURS`` nearest candidates); a record whose
    density is unknown counts as the candidates' average."""
    known = [d for d in densities if d is not None]
    average = sum(known) / len(known) if known else 0.0
    top = sorted(cosines, reverse=True)[:NEIGHBOURS]
    query = sum(top) / len(top) if top else 0.0
    return [min(1.0, max(0.0, r - weight * ((average if d is None else d) - query)))
            for r, d in zip(relevances, densities, strict=True)]
