"""Whether a response can stand on its own as a training sample: it must never mention the function-module
memory, anything retrieved or "reference functions" (the student has none), and an explanation must say
something. The coder's prompt forbids such mentions; these checks make sure it obeyed.
"""

from __future__ import annotations

import re

_LEAK = re.compile("|".join((
    # "the memory" but not "the memory usage" and the like, which a solution may well talk about
    r"\bthe (?:function[- ]module )?memory\b(?! (?:usage|use|used|footprint|consumption|limit|cost|overhead))",
    r"\b(?:function[- ])?module memory\b",
    r"\bmemory (?:hits?|modules?|functions?)\b",
    r"\bretrieved (?:functions?|modules?|helpers?|code|snippets?|references?)\b",
    r"\bthe retrieved\b",
    r"\bthe relevant functions\b",
    r"\breference (?:functions?|modules?|implementations?|code)\b",
    r"\bprovided (?:helper |reference )?functions\b",
)), re.I)

# Shorter than this, an "explanation" is a label ("Here is the code:"), not an explanation.
_MIN_EXPLANATION = 40


def leaks_memory(text: str) -> bool:
    """True if ``text`` (code or explanation) mentions the memory, retrieval or reference functions:
    the response would not stand on its own as a training sample."""
    return _LEAK.search(text) is not None


def usable_explanation(text: str) -> bool:
    """Whether ``text`` can stand beside the code in a training sample: it says something (a sentence or
    more) and never mentions the memory or reference functions (``leaks_memory``)."""
    return len(text.strip()) >= _MIN_EXPLANATION and not leaks_memory(text)
