"""One accepted trajectory -> its SFT records (chat ``messages``), tagged with their variant.

The prompts are the ones ``codestill eval`` asks a student (``training._prompts``: EvalPlus's instruction
for code, CodePLAN's plan request and plan-following request), so a student is trained on exactly what it
is asked at evaluation:

    code:final             the instruction -> the response: the explanation of the approach, then the
                           verified code (``ResponseStyle``; optionally the tests it passed after it)
    code:modular           (option) the same prompt -> the function modules it was built from, then the code
    code:plan-conditioned  the instruction and "Follow this plan:" a plan -> the response of the code that
                           plan led to (what plan sampling asks a student at evaluation)
    plan:forward           the plan request -> a plan written before the code, whose code then passed its
                           tests and was accepted (CodePLAN's test-based plan selection)
    plan:backward          the plan request -> the plan written afterwards from the verified solution

Forward plans whose code failed are left out: training on them would teach plans that do not work. Within
a trajectory a plan's text is exported once per task (a backward plan that reads like a forward one adds
nothing). Every record carries its ``Evidence`` and the task's category in ``provenance``.
The problem in the prompt is the instruction, and when the task came with visible ``assert`` tests, the
first of them, in EvalPlus's MBPP form (it names the function and shows a call).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from codestill.pysrc import parse_quietly
from codestill.schemas import Attempt, ChatMessage, Plan, Provenance, SFTRecord, SFTVariant, Trajectory
from tools.code import same_code
from training._bench import mbpp_prompt
from training._export_evidence import (
    ResponseStyle,
    accepted_attempt,
    evidence,
    explanation_of,
    passed_attempts,
    public_model,
    response,
)
from training._prompts import CODE_INSTRUCTION, FOLLOW_PLAN, PLAN_INSTRUCTION

__all__ = ["MODULAR_INTRO", "RecordOptions", "code_answer", "code_prompt", "modular_answer", "plan_text",
           "problem_text", "public_model", "records_for"]

_NUMBERED = re.compile(r"^\s*(\d+[.)]|[-*])\s+")
MODULAR_INTRO = "The solution is built from these function modules:"


@dataclass(frozen=True)
class RecordOptions:
    """Which records one trajectory gives (``ExportOptions`` holds the user's choice)."""

    modular: bool = False
    forward_plans: bool = True
    backward_plans: bool = True
    plan_conditioned: bool = True
    response_style: ResponseStyle = "explained"
    all_passing: bool = False


def problem_text(t: Trajectory) -> str:
    """The problem as the prompt shows it: the instruction, plus the first visible assert when there is one."""
    tests = t.task.tests
    if tests is None or t.task.hidden_tests or tests.kind != "asserts" or not tests.code.strip():
        return t.task.instruction.strip()
    try:
        tree = parse_quietly(tests.code)
    except SyntaxError:
        return t.task.instruction.strip()
    first = next((s for s in tree.body if isinstance(s, ast.Assert)), None)
    if first is None:
        return t.task.instruction.strip()
    assertion = ast.get_source_segment(tests.code, first) or ast.unparse(first)
    return mbpp_prompt(t.task.instruction.strip(), assertion).strip()


def _request(instruction: str, problem: str) -> str:
    return f"{instruction}\n```\n{problem}\n```\n"


def code_prompt(t: Trajectory) -> str:
    """The code task's user message: ``codestill eval``'s prompt for the same problem, byte for byte."""
    return _request(CODE_INSTRUCTION, problem_text(t))


def plan_text(plan: Plan) -> str:
    """A plan as the numbered list of steps the plan task answers with (any numbering of its own replaced)."""
    return "\n".join(f"{i}. {_NUMBERED.sub('', step).strip()}" for i, step in enumerate(plan.steps, 1))


def code_answer(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def modular_answer(t: Trajectory) -> str | None:
    """The answer in its modular form (AMR-Evol): each function module with its signature and what it does,
    then the whole solution. None when the solution is a single function (no decomposition to show)."""
    if len(t.modules) < 2:
        return None
    lines = [MODULAR_INTRO, ""]
    for i, m in enumerate(t.modules, 1):
        description = m.spec.description.strip()
        lines.append(f"{i}. `{m.spec.signature}`" + (f": {description}" if description else ""))
    return "\n".join([*lines, "", code_answer(t.final_code or "")])


def _plan_attempts(t: Trajectory) -> list[tuple[Plan, Attempt]]:
    """Each forward plan that led to code which passed its tests and was accepted, with that code's
    attempt: the final solution's plan first, then the others in order."""
    final = (t.final_code or "").strip()
    out: list[tuple[Plan, Attempt]] = []
    for a in sorted(passed_attempts(t), key=lambda a: a.code.strip() != final):
        if a.plan_index is None or not 0 <= a.plan_index < len(t.plans) or t.plans[a.plan_index].kind != "forward":
            continue
        if t.plans[a.plan_index] not in [p for p, _ in out]:
            out.append((t.plans[a.plan_index], a))
    return out


def _passers(t: Trajectory, chosen: Attempt | None) -> list[Attempt | None]:
    """The chosen attempt (None: the trajectory records none, yet its final code goes out), then every
    other accepted attempt with other code (``--all-passing``)."""
    out: list[Attempt | None] = [chosen]
    for a in passed_attempts(t):
        if not any(same_code(a.code, b.code if b is not None else t.final_code or "") for b in out):
            out.append(a)
    return out


def records_for(t: Trajectory, run_id: str, options: RecordOptions) -> tuple[list[SFTRecord], int]:
    """The SFT records of one accepted trajectory (see the module docstring), ids ``<trajectory>/<variant>[/k]``,
    and how many code records went out without an explanation (none could stand in a sample)."""
    category = t.task.origin.category if t.task.origin is not None else None
    chosen = accepted_attempt(t)
    code_prompt_ = code_prompt(t)
    plan_prompt = _request(PLAN_INSTRUCTION, problem_text(t))
    extra_tags = (f"category:{category}",) if category else ()
    unexplained = 0

    def record(rid: str, variant: SFTVariant, prompt: str, answer: str, attempt: Attempt | None,
               tags: tuple[str, ...] = ()) -> SFTRecord:
        provenance = Provenance(task_id=t.task.id, trajectory_id=t.id, source=t.task.source, lineage=t.task.lineage,
                                model=public_model(t.model), run_id=run_id, category=category,
                                evidence=evidence(t, attempt))
        return SFTRecord(id=f"{t.id}/{rid}", task="plan" if variant.startswith("plan") else "code",
                         messages=(ChatMessage(role="user", content=prompt),
                                   ChatMessage(role="assistant", content=answer)),
                         provenance=provenance, tags=(variant, *tags, *extra_tags))

    def answer(attempt: Attempt | None, code: str) -> str:
        nonlocal unexplained
        explanation = explanation_of(t, attempt)
        unexplained += options.response_style != "code" and not explanation
        return response(code, explanation, attempt.tests if attempt is not None else None, options.response_style)

    out: list[SFTRecord] = []
    passers = _passers(t, chosen) if options.all_passing else [chosen]
    for k, a in enumerate(passers):
        code = (t.final_code or "") if k == 0 or a is None else a.code
        tags = (("sample:chosen" if k == 0 else "sample:passer"),) if options.all_passing else ()
        out.append(record("code" + (f"/{k}" if k else ""), "code:final", code_prompt_, answer(a, code), a, tags))
    if options.modular and (modular := modular_answer(t)) is not None:
        out.append(record("code-modular", "code:modular", code_prompt_, modular, chosen))
    backward = [p for p in t.plans if p.kind == "backward"] if options.backward_plans else []
    forward = _plan_attempts(t) if options.forward_plans or options.plan_conditioned else []
    if options.plan_conditioned:
        seen: list[str] = []
        pairs = [*forward, *((p, chosen) for p in backward)]
        for plan, a in pairs:
            if (text := plan_text(plan)) in seen or a is None:
                continue
            seen.append(text)
            prompt = f"{code_prompt_}{FOLLOW_PLAN}\n{text}\n"
            out.append(record(f"code-plan/{len(seen) - 1}", "code:plan-conditioned", prompt, answer(a, a.code), a))
    written: list[str] = []
    if options.forward_plans:
        for plan, a in forward:
            if (text := plan_text(plan)) not in written:
                out.append(record(f"plan-forward/{len(written)}", "plan:forward", plan_prompt, text, a))
                written.append(text)
    for k, plan in enumerate(backward):
        if (text := plan_text(plan)) not in written:  # identical plans of one trajectory: exported once
            out.append(record("plan-backward" + (f"/{k}" if k else ""), "plan:backward", plan_prompt, text, chosen))
            written.append(text)
    return out, unexplained
