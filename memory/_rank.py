"""Hybrid relevance: the embedding's cosine similarity blended with word overlap.

Dense embeddings blur a short text's meaning with its neighbours': at 100,000 records, helpers that
merely *name* a function ("Apply textwrap.dedent, then json.dumps") crowd out the function itself
for a query that paraphrases what it does. The words a query shares with a record's text (its
signature, docstring summary and description) separate the two, as hybrid dense + lexical retrieval
does in search engines. So the memory asks Chroma for ``CANDIDATES`` nearest records and scores
them by ``(1 - w) * cosine + w * overlap``, where ``overlap`` is the share of the query's content
words found in the record (``memory.lexical_weight`` is w; 0 gives plain cosine order).
"""

from __future__ import annotations

import re
from functools import lru_cache

CANDIDATES = 64  # nearest records re-ranked (here and by ``_hubness``), at least
_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+")
# Words that say nothing about what a function does.
_STOP = frozenset({
    "a", "an", "and", "any", "are", "as", "at", "be", "by", "can", "def", "for", "from", "given", "has", "have",
    "if", "in", "into", "is", "it", "its", "kwargs", "args", "of", "on", "one", "or", "return", "returns",
    "should", "such", "that", "the", "their", "them", "then", "there", "these", "this", "to", "which", "while",
    "with", "without"})


@lru_cache(maxsize=65536)
def content_words(text: str) -> frozenset[str]:
    """Lower-cased words of ``text`` (identifiers split at ``_`` and case changes), without stop words,
    a plural or third-person ``s`` taken off."""
    out = set()
    for w in _WORD.findall(text):
        w = w.lower()
        if w in _STOP or len(w) < 2:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return frozenset(out)


def overlap(query: str, document: str) -> float:
    """The share of the query's content words that the document contains, in [0, 1]."""
    q = content_words(query)
    return len(q & content_words(document)) / len(q) if q else 0.0


def relevance(cosine: float, query: str, document: str, weight: float) -> float:
    """The blended score in [0, 1]."""
    cosine = min(1.0, max(0.0, cosine))
    return cosine if weight <= 0 else (1 - weight) * cosine + weight * overlap(query, document)
