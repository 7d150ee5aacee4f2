"""What the runs index keeps of one finished run: filterable fields and the text full-text search sees.

Read off the root span's payloads (for a solve run, its final state holds the ``Trajectory``) and
the run's span rows, so any graph is indexed; fields a graph does not have stay empty.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Per run, at most this much text goes into the full-text index: enough for the instruction, every
# attempt's code and the errors, without one runaway payload bloating the index.
MAX_TEXT = 64 << 10
_REASON_KIND = re.compile(r"([a-z][a-z_]+)\s*:")
# Strings that are ids, hashes or numbers only help nobody search.
_NOISE = re.compile(r"[0-9a-f]{16,}|[0-9a-f-]{36}|[\d.\s:-]*")


@dataclass
class RunFacts:
    """The index's columns of one run, besides the root span's own."""

    reason: str | None = None
    reason_kind: str | None = None
    model: str | None = None
    attempts: int = 0
    plans: int = 0
    passed: bool = False
    text: str = ""
    errors: list[str] = field(default_factory=list)


def reason_kind(reason: str | None, verdict: str | None) -> str | None:
    """The taxonomy word that starts a rejection reason ("repeated_failure: ..."), else the reason's
    first words; None for accepted runs, whose reason is only an explanation."""
    if not reason or verdict == "accepted":
        return None
    if (m := _REASON_KIND.match(reason)) is not None:
        return m.group(1)
    return " ".join(reason.split()[:4])[:60]


def _strings(value: Any, out: list[str], budget: list[int]) -> None:
    """Every string under ``value``, depth first, until the budget is spent."""
    stack = [value]
    while stack and budget[0] > 0:
        v = stack.pop()
        if isinstance(v, str):
            if len(v) > 2 and not _NOISE.fullmatch(v):
                out.append(v[: budget[0]])
                budget[0] -= len(v)
        elif isinstance(v, Mapping):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list | tuple):
            stack.extend(reversed(v))


def _trajectory(outputs: Any) -> Mapping[str, Any]:
    if isinstance(outputs, Mapping) and isinstance(outputs.get("trajectory"), Mapping):
        return outputs["trajectory"]
    return {}


def _all_passed(attempt: Mapping[str, Any]) -> bool:
    result = attempt.get("result")
    return isinstance(result, Mapping) and result.get("status") == "passed"


def run_facts(verdict: str | None, inputs: Any, outputs: Any, models: Iterable[str | None],
              errors: Iterable[str | None]) -> RunFacts:
    """The facts of one run from its root payloads, its spans' models and their error lines."""
    traj = _trajectory(outputs)
    state = outputs if isinstance(outputs, Mapping) else {}
    reason = traj.get("reason") or state.get("reason")
    reason = reason if isinstance(reason, str) else None
    attempts = traj.get("attempts") or ()
    plans = traj.get("plans") or state.get("plans") or ()
    counted = Counter(m for m in models if m)
    model = counted.most_common(1)[0][0] if counted else (traj.get("model") or None)
    error_lines = list(dict.fromkeys(e for e in errors if e))
    texts: list[str] = []
    budget = [MAX_TEXT]
    # Errors first: a huge state must not push them out of the budget.
    _strings([error_lines, reason or "", traj.get("failures") or []], texts, budget)
    _strings(inputs, texts, budget)
    _strings(outputs, texts, budget)
    return RunFacts(reason=reason, reason_kind=reason_kind(reason, verdict), model=model,
                    attempts=len(attempts) if isinstance(attempts, list) else 0,
                    plans=len(plans) if isinstance(plans, list) else 0,
                    passed=any(_all_passed(a) for a in attempts if isinstance(a, Mapping)),
                    text="\n".join(dict.fromkeys(texts)), errors=error_lines)
