"""Benchmark decontamination: does a text (a seed function, an instruction, a response) contain a
HumanEval or MBPP problem that codestill is evaluated on?

The benchmark texts are, per problem, its *prompt* (HumanEval: the entry point's docstring; MBPP: the
instruction sentence) and its *solution* (HumanEval: the canonical solution body; MBPP: the reference
code), read from the bundled copies (``codestill.data``). For MBPP these are the problems evaluation
scores: the test split (task ids 11-510) and the few-shot prompt split (1-10), each in sanitized
MBPP's wording and in the original's; the train and validation splits are MBPP's training data, which
codestill teaches on by design (a train problem that copies a test problem is still caught). That is the set the bigcode decontamination
that Magicoder and SelfCodeAlign reuse searches for. Three rules, checked in this order:

    substring   a benchmark text occurs in the text, case-insensitively, with every run of
                whitespace counted as one space and none counted next to punctuation or operators
                (so re-indented, re-wrapped and re-formatted copies are caught: ``x = f(a, b)`` is
                ``x=f(a,b)``). Only benchmark texts of at least ``min_chars`` (30) characters after
                that normalisation take part: below that are solutions such as ``return x + y`` or
                ``return sorted(list(set(l)))``, which ordinary code contains without having seen
                the benchmark (bigcode keeps an allow-list of such HumanEval solutions for the same
                reason).
    ngram       the text holds at least ``min_overlap`` (half, and at least two) of a benchmark
                text's distinct word 10-grams (words: lower-cased ``\\w+`` runs), or shares a run
                of at least ``min_run`` (20) consecutive words with it. This catches copies that were
                lightly edited: a word or a sentence changed, sentences reordered, identifiers
                renamed in part. The share serves short texts (an MBPP instruction has a handful of
                10-grams: one changed word near the end leaves most of them), the run long ones
                (replacing one sentence of a four-sentence HumanEval docstring can take more than
                half of its 10-grams, but leaves a verbatim passage of 20+ words, which no one
                writes by chance). 10 words is long enough that shared phrasing ("write a function
                that takes in a list and an") and code idiom (``for i in range(len(arr))``) stay
                below it, short enough that a reworded sentence leaves the others' n-grams intact
                (GPT-3's decontamination used 13-grams on long documents; benchmark prompts are one
                to five sentences). Measuring the share of the *benchmark text's* n-grams (not of
                the checked text's) means a long response that embeds a benchmark solution is
                caught as surely as a short copy. On the standard library's functions neither rule
                fires once; across the benchmarks themselves it pairs up MBPP's near-identical
                problems (the "surface area" and "matches a string that has an a followed by"
                families, the same tuple-zipping solution under several ids).
    embedding   optional, off by default: cosine similarity of the text's embedding to a benchmark
                prompt's of at least ``embedding_threshold`` (0.8: with all-MiniLM-L6-v2, paraphrased
                MBPP and HumanEval prompts scored 0.81-0.86 against their originals, while the best
                match of any standard-library seed was 0.69). Any embedding function can be given
                (texts -> one row per text); the CLI passes the module memory's bundled
                all-MiniLM-L6-v2. Tools never import the memory package, hence the callable.

Everything except the embedding rule is set lookups on an index built once, so checking ten
thousand texts takes seconds.
"""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from codestill.data import load_humaneval, load_mbpp, load_mbpp_full, mbpp_split
from codestill.pysrc import parse_quietly
from tools._text import ngrams, squeeze, words

__all__ = ["BenchmarkText", "Contamination", "DecontamRule", "Decontaminator", "EmbedFn", "benchmark_texts"]

DecontamRule = Literal["substring", "ngram", "embedding"]
_EVALUATED_SPLITS = ("test", "prompt")
Part = Literal["prompt", "solution"]
# texts -> an array-like of shape (len(texts), dim); rows need not be unit length.
EmbedFn = Callable[[Sequence[str]], Any]


@dataclass(frozen=True)
class BenchmarkText:
    benchmark: str  # "humaneval" | "mbpp"
    item_id: str  # e.g. "humaneval/12", "mbpp/17": the ids of codestill.data
    part: Part
    text: str


@dataclass(frozen=True)
class Contamination:
    """The benchmark item a text matched, by which rule, and on what. ``snippet`` is the matched
    benchmark text (substring, embedding) or the longest run of shared words (ngram); ``score`` is
    1.0 for a substring, the share of the benchmark text's n-grams found, or the cosine similarity."""

    benchmark: str
    item_id: str
    part: Part
    rule: DecontamRule
    snippet: str
    score: float

    def describe(self) -> str:
        snippet = self.snippet if len(self.snippet) <= 80 else self.snippet[:79] + "…"
        return f"{self.item_id} {self.part} ({self.rule} {self.score:.2f}): {snippet!r}"


def _humaneval_docstring(prompt: str, entry_point: str) -> str:
    for node in parse_quietly(prompt).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            # A few prompts put a statement before the docstring (``import math``), which
            # ast.get_docstring does not count: the first string expression in the body is it.
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                        and isinstance(stmt.value.value, str):
                    return stmt.value.value
    return ""


def benchmark_texts(*, humaneval: bool = True, mbpp: bool = True) -> list[BenchmarkText]:
    """The prompts and solutions of the bundled HumanEval (164) problems and of MBPP's evaluated ones (its
    test and prompt splits, 510 task ids: 264 in sanitized MBPP's wording, all in the original's)."""
    out: list[BenchmarkText] = []
    if humaneval:
        for p in load_humaneval():
            # reference = the original prompt + the canonical solution; instruction = that prompt
            # without its surrounding newlines.
            start = p.reference.find(p.instruction)
            solution = p.reference[start + len(p.instruction):] if start >= 0 else ""
            out.append(BenchmarkText("humaneval", p.id, "prompt", _humaneval_docstring(p.instruction, p.entry_point)))
            out.append(BenchmarkText("humaneval", p.id, "solution", solution))
    if mbpp:
        seen: set[tuple[str, str]] = set()
        for p in load_mbpp() + load_mbpp_full():
            if mbpp_split(p.id) not in _EVALUATED_SPLITS:
                continue
            for part, text in (("prompt", p.instruction), ("solution", p.reference)):
                if (part, text) not in seen:  # sanitized MBPP kept many tasks' wording or code as it was
                    seen.add((part, text))
                    out.append(BenchmarkText("mbpp", p.id, part, text))  # type: ignore[arg-type]
    return [t for t in out if t.text.strip()]


@dataclass(frozen=True)
class _Entry:
    source: BenchmarkText
    norm: str
    tokens: tuple[str, ...]
    n_grams: int  # distinct n-grams
    interior: frozenset[str]  # its words but the first and last, which a match may cut


def _longest_shared_run(tokens: Sequence[str], n: int, shared: set[tuple[str, ...]]) -> tuple[str, ...]:
    """The longest passage of ``tokens`` whose every n-gram is in ``shared``."""
    best = (0, 0)
    start = None
    for i, gram in enumerate([*ngrams(tokens, n), None]):
        if gram is not None and gram in shared:
            start = i if start is None else start
        elif start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return tuple(tokens[best[0]:best[1] + n - 1]) if best[1] > best[0] else ()


class Decontaminator:
    """Checks texts against benchmark texts (the bundled HumanEval and MBPP by default); see the
    module docstring for the rules and why their parameters are what they are."""

    def __init__(self, texts: Iterable[BenchmarkText] | None = None, *, ngram: int = 10, min_overlap: float = 0.5,
                 min_run: int = 20, min_chars: int = 30, embed: EmbedFn | None = None,
                 embedding_threshold: float = 0.8) -> None:
        if ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {ngram}")
        if not 0 < min_overlap <= 1:
            raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
        if min_run < ngram:
            raise ValueError(f"min_run ({min_run}) must be at least ngram ({ngram})")
        self.ngram = ngram
        self.min_overlap = min_overlap
        self.min_run = min_run
        self.min_chars = min_chars
        self.embed = embed
        self.embedding_threshold = embedding_threshold
        self._entries: list[_Entry] = []
        self._index: dict[tuple[str, ...], list[int]] = defaultdict(list)
        # Substring candidates with at least three n-grams are found through the index (an occurrence
        # shares at least its interior n-grams); the shorter ones are few and tried one by one.
        self._short: list[int] = []
        for t in benchmark_texts() if texts is None else texts:
            tokens = tuple(words(t.text))
            grams = set(ngrams(tokens, ngram))
            i = len(self._entries)
            self._entries.append(_Entry(source=t, norm=squeeze(t.text), tokens=tokens, n_grams=len(grams),
                                        interior=frozenset(tokens[1:-1])))
            for gram in grams:
                self._index[gram].append(i)
            if len(self._entries[i].norm) >= min_chars and len(grams) < 3:
                self._short.append(i)
        self._prompt_ids = [i for i, e in enumerate(self._entries) if e.source.part == "prompt"]
        self._prompt_vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def _hit(self, i: int, rule: DecontamRule, snippet: str, score: float) -> Contamination:
        s = self._entries[i].source
        return Contamination(benchmark=s.benchmark, item_id=s.item_id, part=s.part, rule=rule, snippet=snippet,
                             score=score)

    def _check_lexical(self, text: str) -> Contamination | None:
        tokens = words(text)
        grams = set(ngrams(tokens, self.ngram))
        counts: Counter[int] = Counter()
        for gram in grams:
            for i in self._index.get(gram, ()):
                counts[i] += 1
        norm = squeeze(text)
        token_set = set(tokens)
        candidates = [i for i in counts if len(self._entries[i].norm) >= self.min_chars]
        candidates += [i for i in self._short if self._entries[i].interior <= token_set]
        found = [i for i in candidates if self._entries[i].norm in norm]
        if found:
            # The longest match is the most telling one; ties go to the benchmark order.
            i = max(sorted(set(found)), key=lambda j: len(self._entries[j].norm))
            return self._hit(i, "substring", " ".join(self._entries[i].source.text.split()), 1.0)
        best: tuple[float, int, tuple[str, ...]] | None = None
        for i, shared in sorted(counts.items()):
            entry = self._entries[i]
            share = shared / entry.n_grams
            # One shared 10-gram is half of an 11-word instruction: "write a function to find the
            # surface area of a" is MBPP's phrasing for spheres and cones alike, so it takes two.
            by_share = share >= self.min_overlap and shared >= 2
            # A run of min_run words is min_run - ngram + 1 shared n-grams at least.
            if not by_share and shared < self.min_run - self.ngram + 1:
                continue
            run = _longest_shared_run(entry.tokens, self.ngram, grams)
            if (by_share or len(run) >= self.min_run) and (best is None or share > best[0]):
                best = (share, i, run)
        if best is None:
            return None
        return self._hit(best[1], "ngram", " ".join(best[2]), best[0])

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        assert self.embed is not None
        vectors = np.asarray(self.embed(list(texts)), dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def check_many(self, texts: Sequence[str], *, prose: Sequence[str] | None = None) -> list[Contamination | None]:
        """``check`` for many texts; the embedding rule (when on) embeds them in one batch.
        ``prose`` is the natural-language part of each text (a seed's docstring, an instruction),
        which the embedding rule compares with the benchmark prompts instead of the whole text:
        code around a copied prompt pulls its embedding away from the prompt's."""
        if prose is not None and len(prose) != len(texts):
            raise ValueError(f"{len(prose)} prose texts for {len(texts)} texts")
        embedded = texts if prose is None else prose
        results = [self._check_lexical(t) for t in texts]
        if self.embed is None or not self._prompt_ids:
            return results
        todo = [k for k, r in enumerate(results) if r is None]
        if not todo:
            return results
        if self._prompt_vectors is None:
            self._prompt_vectors = self._vectors([self._entries[i].source.text for i in self._prompt_ids])
        similarity = self._vectors([embedded[k] for k in todo]) @ self._prompt_vectors.T
        for row, k in enumerate(todo):
            j = int(np.argmax(similarity[row]))
            if similarity[row, j] >= self.embedding_threshold:
                i = self._prompt_ids[j]
                results[k] = self._hit(i, "embedding", self._entries[i].source.text, float(similarity[row, j]))
        return results

    def check(self, text: str, *, prose: str | None = None) -> Contamination | None:
        """The benchmark item ``text`` is contaminated with, or None (``prose``: see ``check_many``)."""
        return self.check_many([text], prose=None if prose is None else [prose])[0]
