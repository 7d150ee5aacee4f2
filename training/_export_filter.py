"""Which trajectories of a run become SFT data, and why the others do not.

In order: only accepted trajectories with final code; a trajectory id seen before is dropped (a run that
did an item twice); benchmark decontamination of the instruction and the solution (``tools.decontam``);
exact and MinHash near-duplicate removal of instructions (``tools.dedup``; the first one in the file is
kept). Decontamination runs before deduplication so that a contaminated instruction never stands in for
a clean near-duplicate of it. Every trajectory that is not kept gets one ``Removal`` saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codestill.schemas import Trajectory

RemovalReason = Literal["not_accepted", "no_code", "repeated_id", "contaminated", "exact_duplicate",
                        "near_duplicate"]
REMOVAL_REASONS: tuple[RemovalReason, ...] = ("not_accepted", "no_code", "repeated_id", "contaminated",
                                              "exact_duplicate", "near_duplicate")
Benchmark = Literal["humaneval", "mbpp"]
BENCHMARKS: tuple[Benchmark, ...] = ("humaneval", "mbpp")
_CHUNK = 64  # trajectories per progress update of the decontamination
# (stage, done, total): how far a stage of the export is; the CLI draws it as a progress bar.
ProgressFn = Callable[[str, int, int], None]


class Removal(BaseModel):
    """One trajectory left out of the export, and why: a line of ``removed.jsonl``.

    ``of`` names the kept trajectory it duplicates; ``benchmark``/``item_id``/``rule`` the benchmark
    problem it matched; ``score`` is the estimated Jaccard similarity (near duplicates) or the
    decontamination score (1.0 for a substring); ``detail`` says it in words.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trajectory_id: str
    task_id: str
    source: str
    reason: RemovalReason
    detail: str
    instruction: str = Field(description="The first 200 characters of the instruction.")
    of: str | None = None
    benchmark: str | None = None
    item_id: str | None = None
    rule: str | None = None
    score: float | None = None


def _removal(t: Trajectory, reason: RemovalReason, detail: str, **extra: str | float | None) -> Removal:
    return Removal(trajectory_id=t.id, task_id=t.task.id, source=t.task.source, reason=reason, detail=detail,
                   instruction=t.task.instruction[:200], **extra)  # type: ignore[arg-type]


def usable(trajectories: Sequence[Trajectory]) -> tuple[list[Trajectory], list[Removal]]:
    """Accepted trajectories with final code, each trajectory id once."""
    kept: list[Trajectory] = []
    removed: list[Removal] = []
    seen: set[str] = set()
    for t in trajectories:
        if t.verdict != "accepted":
            removed.append(_removal(t, "not_accepted", f"{t.verdict}: {t.reason}"))
        elif not (t.final_code or "").strip():
            removed.append(_removal(t, "no_code", "accepted without final code"))
        elif t.id in seen:
            removed.append(_removal(t, "repeated_id", f"trajectory id {t.id} appears earlier in the file",
                                    of=t.id))
        else:
            seen.add(t.id)
            kept.append(t)
    return kept, removed


def decontaminate(trajectories: Sequence[Trajectory], benchmarks: Sequence[Benchmark],
                  progress: ProgressFn | None = None) -> tuple[list[Trajectory], list[Removal]]:
    """Drop trajectories whose instruction or final code holds a problem of ``benchmarks``.

    The instruction and the code are checked as one text, so a benchmark solution copied into an answer
    is caught as surely as a copied prompt (see ``tools.decontam`` for the rules).
    """
    if not benchmarks or not trajectories:
        return list(trajectories), []
    from tools.decontam import Decontaminator, benchmark_texts

    checker = Decontaminator(benchmark_texts(humaneval="humaneval" in benchmarks, mbpp="mbpp" in benchmarks))
    kept: list[Trajectory] = []
    removed: list[Removal] = []
    for start in range(0, len(trajectories), _CHUNK):
        chunk = trajectories[start:start + _CHUNK]
        texts = [f"{t.task.instruction}\n{t.final_code or ''}" for t in chunk]
        for t, hit in zip(chunk, checker.check_many(texts), strict=True):
            if hit is None:
                kept.append(t)
            else:
                removed.append(_removal(t, "contaminated", f"matches {hit.describe()}", benchmark=hit.benchmark,
                                        item_id=hit.item_id, rule=hit.rule, score=round(hit.score, 4)))
        if progress is not None:
            progress("decontaminating", start + len(chunk), len(trajectories))
    return kept, removed


def deduplicate(trajectories: Sequence[Trajectory], *, near: bool, threshold: float,
                progress: ProgressFn | None = None) -> tuple[list[Trajectory], list[Removal]]:
    """Drop trajectories whose instruction is the same (case and whitespace aside) as an earlier kept one's,
    or, with ``near``, a MinHash near duplicate of one (estimated Jaccard of word 5-grams >= ``threshold``).

    Only the instruction counts: two different tasks may share a solution, and an evolved instruction keeps
    its parent's function names, so the code-based rules of ``tools.dedup`` (exact code, same names) are off.
    """
    from tools.dedup import Deduper

    deduper = Deduper(threshold=threshold, near=near, same_names=False)
    kept: list[Trajectory] = []
    removed: list[Removal] = []
    for i, t in enumerate(trajectories, 1):
        found = deduper.check_and_add(t.id, t.task.instruction)
        if found is None:
            kept.append(t)
        elif found.rule == "near":
            removed.append(_removal(t, "near_duplicate", f"instruction is a {found.describe()}", of=found.of,
                                    score=round(found.similarity, 4)))
        else:
            removed.append(_removal(t, "exact_duplicate", f"instruction is the {found.describe()}", of=found.of,
                                    score=1.0))
        if progress is not None and (i % _CHUNK == 0 or i == len(trajectories)):
            progress("deduplicating", i, len(trajectories))
    return kept, removed
