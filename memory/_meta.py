"""How a module lives in Chroma: one record per module, id from the normalised-AST hash, the embedded
text as the document, everything else as flat metadata.

Counts are kept per writer: each ``ModuleMemory`` (one per process) has a writer id and only ever
updates its own keys ``n.<count>.<writer>``; a count is the sum over writers. Chroma merges metadata
keys on update and has no atomic increment, so this is what keeps two processes sharing a server from
overwriting each other's increments.

Records are never deleted to settle a race (a count written to a deleted record would be lost): a
record that lost a near-duplicate race between processes gets ``alias`` = the surviving record's id
and stays, holding its counts; the survivor gets ``merged`` = True. Readers fold aliases into their
survivor. Records written in one process never become aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from codestill.ports import AddResult
from codestill.schemas import Module, StoredModule, TestSuite, Verification
from tools.code import FunctionInfo, function_info, normalized_hash, skeleton_hash

Count = Literal["added", "retrieved", "reused"]
COUNTS: tuple[Count, ...] = ("added", "retrieved", "reused")


def count_key(count: Count, writer: str) -> str:
    return f"n.{count}.{writer}"


def totals(meta: dict[str, Any]) -> dict[Count, int]:
    out: dict[Count, int] = dict.fromkeys(COUNTS, 0)
    for key, value in meta.items():
        if key.startswith("n."):
            count = key.split(".", 2)[1]
            if count in out:
                out[count] += int(value)  # type: ignore[index]
    return out


def add_counts(into: dict[Count, int], meta: dict[str, Any]) -> None:
    for c, n in totals(meta).items():
        into[c] += n


def alias_of(meta: dict[str, Any]) -> str:
    """The id of the record this one was merged into, or "" for a live record."""
    return str(meta.get("alias") or "")


def summary(docstring: str, limit: int = 600) -> str:
    """A docstring's first paragraph: what the function is for, without its parameter lists and
    examples, which would only dilute the embedding (and MiniLM reads 256 tokens at most)."""
    first = docstring.strip().split("\n\n", 1)[0]
    return " ".join(first.split())[:limit]


def embed_text(signature: str, docstring: str, description: str) -> str:
    """What a later spec will resemble: the signature, the docstring's summary, the description; not
    the body."""
    return "\n".join(part for part in (signature.strip(), summary(docstring), description.strip()) if part)


def spec_text(signature: str, description: str) -> str:
    return embed_text(signature, "", description)


@dataclass
class Incoming:
    """One module on its way in, with what the memory derives from its code."""

    module: Module
    info: FunctionInfo
    id: str
    ast_hash: str
    skeleton: str
    created_at: datetime
    counts: dict[Count, int] = field(default_factory=lambda: {"added": 1, "retrieved": 0, "reused": 0})

    @property
    def text(self) -> str:
        return embed_text(self.info.signature, self.info.docstring, self.module.spec.description)

    def merge(self, other: Incoming) -> None:
        for c in COUNTS:
            self.counts[c] += other.counts[c]


def incoming(module: Module, created_at: datetime | None = None,
             counts: dict[Count, int] | None = None) -> Incoming:
    """Raises SyntaxError / ValueError when the code does not parse or has no function."""
    h = normalized_hash(module.code)
    try:
        info = function_info(module.code, module.spec.name)
    except ValueError:
        info = function_info(module.code)
    return Incoming(module=module, info=info, id=f"m{h[:31]}", ast_hash=h, skeleton=skeleton_hash(module.code),
                    created_at=created_at or datetime.now(UTC),
                    counts=dict(counts) if counts else {"added": 1, "retrieved": 0, "reused": 0})


def admit(modules: Sequence[Module | StoredModule], verified_only: bool
          ) -> tuple[list[AddResult | None], list[tuple[int, Incoming]]]:
    """What of a batch may enter a memory: an unverified module (where only verified ones may) or one
    whose code does not parse gets its ``AddResult`` at once; the rest come back as (index, ``Incoming``)
    to deduplicate and store. A ``StoredModule`` (as an import reads it) keeps its counts and creation time."""
    results: list[AddResult | None] = [None] * len(modules)
    items: list[tuple[int, Incoming]] = []
    for i, m in enumerate(modules):
        module = m.to_module() if isinstance(m, StoredModule) else m
        if verified_only and not module.verified:
            results[i] = AddResult("unverified", None, "only verified modules enter the memory")
            continue
        try:
            if isinstance(m, StoredModule):
                counts: dict[Count, int] = {"added": m.times_added, "retrieved": m.times_retrieved,
                                            "reused": m.times_reused}
                items.append((i, incoming(module, m.created_at, counts)))
            else:
                items.append((i, incoming(module)))
        except (SyntaxError, ValueError) as e:
            results[i] = AddResult("invalid", None, f"the code does not parse as a function: {e}")
    return results, items


def to_metadata(item: Incoming, writer: str) -> dict[str, Any]:
    m = item.module
    meta: dict[str, Any] = {
        "name": item.info.name, "signature": item.info.signature, "shape": item.info.shape,
        "docstring": item.info.docstring, "description": m.spec.description, "code": m.code,
        "ast_hash": item.ast_hash, "skeleton": item.skeleton, "language": m.language, "verified": m.verified,
        "created_at": item.created_at.timestamp(), "alias": "",
    }
    if m.tests is not None:
        meta["tests"] = m.tests.model_dump_json()
    if m.verification is not None:
        meta["verification"] = m.verification.model_dump_json()
    for key in ("task_id", "trajectory_id"):
        if getattr(m, key):
            meta[key] = getattr(m, key)
    for c in COUNTS:
        if item.counts[c]:
            meta[count_key(c, writer)] = item.counts[c]
    return meta


def from_metadata(id: str, meta: dict[str, Any], extra: dict[Count, int] | None = None) -> StoredModule:
    """The record as a ``StoredModule``; ``extra``: the counts of records merged into it."""
    n = totals(meta)
    for c in COUNTS:
        n[c] += (extra or {}).get(c, 0)
    return StoredModule(
        id=id, name=meta["name"], signature=meta["signature"], docstring=meta.get("docstring", ""),
        description=meta.get("description", ""), code=meta["code"],
        tests=TestSuite.model_validate_json(meta["tests"]) if meta.get("tests") else None,
        language=meta.get("language", "python"), verified=bool(meta.get("verified", False)),
        verification=Verification.model_validate_json(meta["verification"]) if meta.get("verification") else None,
        task_id=meta.get("task_id"), trajectory_id=meta.get("trajectory_id"),
        times_added=n["added"], times_retrieved=n["retrieved"], times_reused=n["reused"],
        created_at=datetime.fromtimestamp(float(meta["created_at"]), UTC),
    )


def stored_counts(record: StoredModule) -> dict[Count, int]:
    return {"added": record.times_added, "retrieved": record.times_retrieved, "reused": record.times_reused}


def order_key(meta: dict[str, Any], id: str) -> tuple[float, str]:
    """Which of two near duplicates survives: the older, then the smaller id. Every process agrees."""
    return (float(meta["created_at"]), id)
