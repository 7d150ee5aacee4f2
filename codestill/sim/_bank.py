"""Which bank problem a request is about.

An exact match wins: the problem's normalised instruction (lower case, whitespace collapsed)
appears inside the normalised user messages. Otherwise the best token overlap: the share of the
problem's distinctive words (and, weighted up, its entry point's name) found in the messages,
above ``THRESHOLD``. An inverted index keeps this to the problems that share a word with the
request, and a per-index cache answers repeated prompts (planner, coder, critic... all quote the
same task) without work.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

from codestill.data import BankProblem

THRESHOLD = 0.6  # share of a problem's weighted words the request must contain
ENTRY_WEIGHT = 3.0  # the entry point's name is rarer evidence than any one word
COMMON_SHARE = 0.15  # words in more problems than this share tell problems apart too little
CANDIDATES = 8  # best-scoring problems checked for an exact match

_WORD = re.compile(r"[a-z_][a-z0-9_]*|\d+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


class ProblemIndex:
    """An immutable index over the bank; ``match(text)`` is cached per instance."""

    def __init__(self, problems: Sequence[BankProblem], cache_size: int = 4096) -> None:
        self.problems = tuple(problems)
        self._norm = tuple(normalise(p.instruction) for p in self.problems)
        words = [set(_WORD.findall(n)) for n in self._norm]
        df: dict[str, int] = defaultdict(int)
        for ws in words:
            for w in ws:
                df[w] += 1
        limit = max(2, int(COMMON_SHARE * len(self.problems)))
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        totals = []
        for i, (p, ws) in enumerate(zip(self.problems, words, strict=True)):
            weights = {w: 1.0 for w in ws if df[w] <= limit}
            weights[p.entry_point.lower()] = ENTRY_WEIGHT
            for w, weight in weights.items():
                postings[w].append((i, weight))
            totals.append(sum(weights.values()))
        self._postings = {w: tuple(v) for w, v in postings.items()}
        self._totals = tuple(totals)
        self._by_id = {p.id: p for p in self.problems}
        self.match = lru_cache(maxsize=cache_size)(self._match)

    def get(self, problem_id: str) -> BankProblem | None:
        return self._by_id.get(problem_id)

    def _match(self, text: str) -> BankProblem | None:
        norm = normalise(text)
        scores: dict[int, float] = defaultdict(float)
        for w in set(_WORD.findall(norm)):
            for i, weight in self._postings.get(w, ()):
                scores[i] += weight
        if not scores:
            return None
        ranked = sorted(scores, key=lambda i: scores[i] / self._totals[i], reverse=True)[:CANDIDATES]
        exact = [i for i in ranked if self._norm[i] in norm]
        if exact:
            # The longest quoted instruction is the most specific; the score breaks ties between
            # problems with the same instruction (their entry points differ).
            best = max(exact, key=lambda i: (len(self._norm[i]), scores[i] / self._totals[i]))
            return self.problems[best]
        best = ranked[0]
        return self.problems[best] if scores[best] / self._totals[best] >= THRESHOLD else None
