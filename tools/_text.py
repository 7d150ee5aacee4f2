"""Text normalisation shared by deduplication and decontamination, so that both agree on what
"the same words" means."""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+")
_AROUND_PUNCTUATION = re.compile(r"\s*([^\w\s])\s*")


def normalize_text(text: str) -> str:
    """Lower case, every run of whitespace one space, no leading or trailing space: equal for texts
    that differ only in case, indentation or line breaks."""
    return " ".join(text.lower().split())


def squeeze(text: str) -> str:
    """``normalize_text`` without the spaces next to punctuation and operators: ``f(a, b=1)`` and
    ``f ( a,b = 1 )`` come out alike, as code does before and after a formatter."""
    return _AROUND_PUNCTUATION.sub(r"\1", normalize_text(text))


def words(text: str) -> list[str]:
    """The lower-cased word tokens (runs of letters, digits and ``_``); punctuation and operators go.
    For code this keeps identifiers, keywords and numbers, which is what distinguishes one snippet
    from another."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Consecutive ``n``-token windows, in order (empty when there are fewer than ``n`` tokens)."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
