"""The direct-distillation baseline: the teacher's first answers, with no gate in between.

AMR-Evol and SelfCodeAlign compare verified data with what a teacher says when it is simply asked:
Code Alpaca-style distillation, bugs included. ``codestill export --unverified`` writes that set from
the same run, so the two differ only in the verification: every trajectory (accepted, rejected or
failed) gives one ``code:unverified`` record, its first attempt's code and explanation, in the same
prompt and response form as ``code:final``. Nothing in it ran in the sandbox as far as the record
is concerned: it carries no evidence. Decontamination and duplicate removal still apply (they are
not verification). It exists to measure what verification buys; do not train a student you mean to
use on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from codestill.schemas import ChatMessage, Provenance, SFTRecord, Trajectory
from tools.leaks import usable_explanation
from training._export_evidence import ResponseStyle, public_model, response
from training._export_filter import Removal, _removal
from training._export_records import code_prompt


def first_answers(trajectories: Sequence[Trajectory]) -> tuple[list[Trajectory], list[Removal]]:
    """Every trajectory whose coder wrote something, each id once, whatever its verdict."""
    kept: list[Trajectory] = []
    removed: list[Removal] = []
    seen: set[str] = set()
    for t in trajectories:
        if not t.attempts or not t.attempts[0].code.strip():
            removed.append(_removal(t, "no_code", f"{t.verdict} before the coder wrote any code"))
        elif t.id in seen:
            removed.append(_removal(t, "repeated_id", f"trajectory id {t.id} appears earlier in the file", of=t.id))
        else:
            seen.add(t.id)
            kept.append(t)
    return kept, removed


def unverified_record(t: Trajectory, run_id: str, style: ResponseStyle) -> tuple[SFTRecord, bool]:
    """The first answer of ``t`` as a record, and whether it had to go out without an explanation.
    ``explained+tests`` shows no tests here: an unverified answer passed none."""
    first = t.attempts[0]
    explanation = first.explanation if usable_explanation(first.explanation) else ""
    category = t.task.origin.category if t.task.origin is not None else None
    answer = response(first.code, explanation, None, "code" if style == "code" else "explained")
    record = SFTRecord(
        id=f"{t.id}/code-unverified", task="code",
        messages=(ChatMessage(role="user", content=code_prompt(t)), ChatMessage(role="assistant", content=answer)),
        provenance=Provenance(task_id=t.task.id, trajectory_id=t.id, source=t.task.source, lineage=t.task.lineage,
                              model=public_model(t.model), run_id=run_id, category=category),
        tags=("code:unverified", *((f"category:{category}",) if category else ())))
    return record, style != "code" and not explanation
