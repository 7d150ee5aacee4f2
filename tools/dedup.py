"""Duplicate removal for seeds and generated data, streaming: each item is checked against every item
kept before it, and the first of a group of duplicates is the one kept.

Three rules, checked in this order:

    exact       the same text once normalised (lower case, whitespace collapsed), or, for items with
                code, the same ``tools.code.normalized_source`` (formatting, comments, docstrings and
                local variable names do not count)
    same_names  two items whose code defines exactly the same non-empty set of top-level function
                names: SelfCodeAlign's (and Magicoder's) sanitisation treats two generated solutions
                that define the same functions as the same task answered twice
    near        MinHash LSH (datasketch) over word 5-gram shingles of the text, estimated Jaccard
                similarity at least ``threshold`` (0.5 by default, SelfCodeAlign's seed setting)

Shingles are word 5-grams of ``tools._text.words`` (lower-cased ``\\w+`` runs; punctuation dropped):
the tokenisation SelfCodeAlign's ``minhash_dedup`` uses. Words rather than characters because a
reworded sentence keeps most of its word 5-grams while a different text on the same topic does not;
5 because shorter windows make unrelated code (``for i in range``) look alike. A text of fewer than
five words is one shingle, so it can only be a near duplicate of the same words.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from datasketch import MinHash, MinHashLSH

from codestill.pysrc import parse_quietly
from tools._text import ngrams, normalize_text, words
from tools.code import normalized_source

__all__ = ["DedupResult", "DedupRule", "Deduper", "Duplicate", "dedup", "function_names"]

DedupRule = Literal["exact", "same_names", "near"]
T = TypeVar("T")

# datasketch >= 2.0 wants the permutation scheme named when permutations are shared; affine32 is its
# default for new sketches (bijective, half the memory of the legacy one).
_SCHEME: Literal["affine32"] = "affine32"


@dataclass(frozen=True)
class Duplicate:
    """Why ``key`` was removed: it duplicates the kept item ``of`` under ``rule``. ``similarity`` is
    the estimated Jaccard similarity for ``near`` and 1.0 for the other rules."""

    key: str
    of: str
    rule: DedupRule
    similarity: float = 1.0

    def describe(self) -> str:
        how = {"exact": "same text", "same_names": "same function names",
               "near": f"near duplicate, Jaccard ~{self.similarity:.2f}"}[self.rule]
        return f"{how} as {self.of}"


def function_names(code: str) -> frozenset[str]:
    """The names of the top-level functions ``code`` defines; empty when it does not parse."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return frozenset()
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Fingerprint:
    text: str
    code: str | None
    names: frozenset[str]
    minhash: MinHash | None


class Deduper:
    """Remembers the items kept so far and tells whether a new one duplicates any of them.

    ``threshold`` is the Jaccard similarity from which two texts are near duplicates; ``num_perm``
    the MinHash size (128: the estimate's standard error is at most 0.044); ``shingle`` the word
    n-gram length. Each rule can be switched off: seed mining turns ``same_names`` off, since two
    library functions called ``quote`` in different modules are different functions, while two
    generated answers that define the same names answer the same task.
    """

    def __init__(self, *, threshold: float = 0.5, num_perm: int = 128, shingle: int = 5, exact: bool = True,
                 near: bool = True, same_names: bool = True, seed: int = 1) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if shingle < 1:
            raise ValueError(f"shingle must be at least 1, got {shingle}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle = shingle
        self.rules: dict[DedupRule, bool] = {"exact": exact, "same_names": same_names, "near": near}
        # One set of permutations for every sketch: sketches are only comparable when they share it,
        # and drawing it once is far cheaper than once per item.
        self._template = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME)
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._sketches: dict[str, MinHash] = {}
        self._texts: dict[str, str] = {}
        self._codes: dict[str, str] = {}
        self._names: dict[frozenset[str], str] = {}
        self._order: dict[str, int] = {}  # key -> position among the kept items

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._order

    def _sketch(self, text: str) -> MinHash | None:
        tokens = words(text)
        if not tokens:
            return None
        grams = ngrams(tokens, self.shingle) or [tuple(tokens)]
        sketch = MinHash(num_perm=self.num_perm, permutations=self._template.permutations, scheme=_SCHEME)
        sketch.update_batch([" ".join(g).encode() for g in grams])
        return sketch

    def _fingerprint(self, text: str, code: str | None) -> _Fingerprint:
        exact_code = names = None
        if code is not None:
            try:
                exact_code = _digest(normalized_source(code))
            except (SyntaxError, ValueError):
                exact_code = _digest(normalize_text(code))
            names = function_names(code)
        return _Fingerprint(text=_digest(normalize_text(text)), code=exact_code, names=names or frozenset(),
                            minhash=self._sketch(text) if self.rules["near"] else None)

    def _find(self, key: str, fp: _Fingerprint) -> Duplicate | None:
        if self.rules["exact"]:
            of = self._texts.get(fp.text)
            if of is None and fp.code is not None:
                of = self._codes.get(fp.code)
            if of is not None:
                return Duplicate(key=key, of=of, rule="exact")
        if self.rules["same_names"] and fp.names and fp.names in self._names:
            return Duplicate(key=key, of=self._names[fp.names], rule="same_names")
        if fp.minhash is not None:
            # LSH gives candidates (some below the threshold, by design of the banding); the
            # estimate decides. The most similar one is named, the earliest kept on a tie.
            # (LSH answers in no particular order, hence the explicit tie-break.)
            best: tuple[float, int, str] | None = None
            for found in self._lsh.query(fp.minhash):
                other = str(found)
                similarity = float(fp.minhash.jaccard(self._sketches[other]))
                candidate = (similarity, -self._order[other], other)
                if similarity >= self.threshold and (best is None or candidate > best):
                    best = candidate
            if best is not None:
                return Duplicate(key=key, of=best[2], rule="near", similarity=best[0])
        return None

    def _remember(self, key: str, fp: _Fingerprint) -> None:
        if key in self._order:
            raise ValueError(f"key {key!r} was added already")
        self._order[key] = len(self._order)
        self._texts.setdefault(fp.text, key)
        if fp.code is not None:
            self._codes.setdefault(fp.code, key)
        if fp.names:
            self._names.setdefault(fp.names, key)
        if fp.minhash is not None:
            self._sketches[key] = fp.minhash
            self._lsh.insert(key, fp.minhash)

    def check(self, key: str, text: str, code: str | None = None) -> Duplicate | None:
        """Whether the item duplicates one kept already, without keeping it."""
        return self._find(key, self._fingerprint(text, code))

    def add(self, key: str, text: str, code: str | None = None) -> None:
        """Keep the item whatever it duplicates (e.g. items kept by an earlier, interrupted run).
        Raises ValueError if ``key`` was added before."""
        self._remember(key, self._fingerprint(text, code))

    def check_and_add(self, key: str, text: str, code: str | None = None) -> Duplicate | None:
        """The duplicate found, or None, in which case the item is now kept. ``code`` (when given)
        takes part in the exact and same-names rules; ``text`` in the exact and near ones."""
        fp = self._fingerprint(text, code)
        found = self._find(key, fp)
        if found is None:
            self._remember(key, fp)
        return found


@dataclass
class DedupResult(Generic[T]):
    kept: list[T] = field(default_factory=list)
    removed: list[tuple[T, Duplicate]] = field(default_factory=list)


def dedup(items: Iterable[T], *, key: Callable[[T], str], text: Callable[[T], str],
          code: Callable[[T], str | None] | None = None, deduper: Deduper | None = None) -> DedupResult[T]:
    """Deduplicate ``items`` in order (the first of duplicates is kept). ``key``/``text``/``code``
    read an item's id, text and optional code; ``deduper`` carries the rules and any items kept
    before (a fresh one with the default rules otherwise)."""
    deduper = deduper if deduper is not None else Deduper()
    result: DedupResult[T] = DedupResult()
    for item in items:
        found = deduper.check_and_add(key(item), text(item), code(item) if code is not None else None)
        if found is None:
            result.kept.append(item)
        else:
            result.removed.append((item, found))
    return result
