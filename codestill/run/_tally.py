"""A batch's yield per stage, rejection reasons, tokens and time, summed input by input.

The same ``Tally`` feeds the live display (``add`` as inputs finish) and ``stats.json`` (``from_run``:
everything the ledger holds, earlier sessions included), so the two always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codestill.run._ledger import Entry, committed
from codestill.schemas import REJECT_REASONS, Trajectory, Usage


def reason_kind(reason: str) -> str:
    """The taxonomy word of a reason ("tests_wrong: the tests ..." -> "tests_wrong"); "other" when a
    reason does not start with one of ``REJECT_REASONS`` (or ``internal_error``)."""
    head = reason.split(":", 1)[0].strip()
    return head if head in (*REJECT_REASONS, "internal_error") else "other"


@dataclass
class Tally:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    eliminated: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    instruct_usage: Usage = field(default_factory=Usage)
    errors: int = 0

    def add(self, entry: Entry, trajectories: Iterable[Trajectory]) -> None:
        self.inputs += 1
        self.outcomes[entry.outcome] += 1
        d = entry.detail
        self.stages["instructions"] += int(d.get("instructions", 0))
        self.stages["evolved"] += int(d.get("evolved", 0))
        self.eliminated.update(d.get("eliminated", {}))
        self.stages["no_instruction"] += int("no_instruction" in d)
        self.errors += int("error" in d)
        if "instruct_usage" in d:
            self.instruct_usage += Usage.model_validate(d["instruct_usage"])
        for t in trajectories:
            self._trajectory(t)

    def _trajectory(self, t: Trajectory) -> None:
        s = self.stages
        s["solved_tasks"] += 1
        s["plans"] += sum(p.kind == "forward" for p in t.plans)
        s["backward_plans"] += sum(p.kind == "backward" for p in t.plans)
        s["modules"] += len(t.modules)
        s["modules_retrieved"] += len(t.memory_hits)
        s["modules_reused"] += len(t.reused_modules)
        s["modules_written"] += len(t.added_modules)
        s["attempts"] += len(t.attempts)
        s["repairs"] += sum(a.round > 0 for a in t.attempts)
        s[t.verdict] += 1
        if t.verdict != "accepted":
            self.rejections[reason_kind(t.reason)] += 1
        self.usage += t.usage

    @property
    def accepted(self) -> int:
        return self.stages["accepted"]

    @property
    def tokens(self) -> int:
        return self.usage.total_tokens + self.instruct_usage.total_tokens

    @property
    def llm_calls(self) -> int:
        return self.usage.calls + self.instruct_usage.calls

    def replies(self) -> dict[str, dict[str, int]]:
        """Per agent role: its replies, those cut off at the token limit (finish_reason=length) and those
        no parser could read (each one was re-asked or failed its step)."""
        u = self.usage + self.instruct_usage
        return {role: {"replies": n, "cut_off": u.cut_off.get(role, 0), "unreadable": u.unreadable.get(role, 0)}
                for role, n in sorted(u.replies.items())}

    @classmethod
    def from_run(cls, run_dir: Path) -> Tally:
        """Everything committed in a run directory (or one shard's)."""
        tally = cls()
        for entry, lines in committed(run_dir):
            tally.add(entry, [Trajectory.model_validate_json(line) for line in lines])
        return tally

    def to_json(self, wall_s: float, total_inputs: int) -> dict[str, Any]:
        per = self.accepted or None
        return {
            "inputs": {"total": total_inputs, "done": self.inputs, "outcomes": dict(self.outcomes),
                       "internal_errors": self.errors},
            "yield": {"inputs": self.inputs, **{k: self.stages[k] for k in (
                "instructions", "evolved", "no_instruction", "solved_tasks", "plans", "backward_plans", "modules",
                "modules_retrieved", "modules_reused", "modules_written", "attempts", "repairs", "accepted",
                "rejected", "failed")}, "evolutions_eliminated": sum(self.eliminated.values())},
            "eliminated": dict(self.eliminated.most_common()),
            "rejection_reasons": dict(self.rejections.most_common()),
            "tokens": {"solve": self.usage.model_dump(), "instructions": self.instruct_usage.model_dump(),
                       "total": self.tokens, "per_accepted": round(self.tokens / per, 1) if per else None},
            "llm_calls": self.llm_calls,
            "replies": self.replies(),
            "wall_s": round(wall_s, 3),
            "wall_s_per_accepted": round(wall_s / per, 4) if per else None,
            "accept_rate": round(self.accepted / self.stages["solved_tasks"], 4) if self.stages["solved_tasks"] else None,
        }
