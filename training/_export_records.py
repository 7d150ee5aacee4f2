"""One accepted trajectory -> its SFT records (chat ``messages``), tagged with their variant.

The prompts are the ones ``codestill eval`` asks a student (``training._prompts``: EvalPlus's instruction
for code, CodePLAN's plan request), so a student is trained on exactly what it is asked at evaluation:

    code:final      the instruction -> the verified solution in a ```python block
    code:modular    (option) the same prompt -> the function modules it was built from, then the solution
    plan:forward    the plan request -> a plan written before the code whose code then passed its tests
                    and was accepted (CodePLAN's test-based plan selection), each such plan once
    plan:backward   the plan request -> the plan written afterwards from the verified solution

Forward plans whose code failed are left out: training on them would teach plans that do not work.
The problem in the prompt is the instruction, and when the task came with visible ``assert`` tests, the
first of them, in EvalPlus's MBPP form (it names the function and shows a call).
"""

from __future__ import annotations

import ast
import re

from codestill.schemas import ChatMessage, Plan, Provenance, SFTRecord, SFTVariant, Trajectory
from training._bench import mbpp_prompt
from training._prompts import CODE_INSTRUCTION, PLAN_INSTRUCTION

_NUMBERED = re.compile(r"^\s*(\d+[.)]|[-*])\s+")
_URL_CREDENTIALS = re.compile(r"(?<=//)[^/@\s]+@")
MODULAR_INTRO = "The solution is built from these function modules:"


def public_model(label: str) -> str:
    """A trajectory's model label with any ``user:password@`` of an endpoint URL taken out: labels name
    models and endpoints, never keys, but a URL can carry credentials and exports get shared."""
    return _URL_CREDENTIALS.sub("", label)


def problem_text(t: Trajectory) -> str:
    """The problem as the prompt shows it: the instruction, plus the first visible assert when there is one."""
    tests = t.task.tests
    if tests is None or t.task.hidden_tests or tests.kind != "asserts" or not tests.code.strip():
        return t.task.instruction.strip()
    try:
        tree = ast.parse(tests.code)
    except SyntaxError:
        return t.task.instruction.strip()
    first = next((s for s in tree.body if isinstance(s, ast.Assert)), None)
    if first is None:
        return t.task.instruction.strip()
    assertion = ast.get_source_segment(tests.code, first) or ast.unparse(first)
    return mbpp_prompt(t.task.instruction.strip(), assertion).strip()


def _request(instruction: str, problem: str) -> str:
    return f"{instruction}\n```\n{problem}\n```\n"


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


def verified_forward_plans(t: Trajectory) -> list[Plan]:
    """Forward plans that led to code which passed its tests and that the critic (if any) accepted; the
    plan of the final solution first, then the others in order, each distinct plan once."""
    good: list[int] = []
    final = (t.final_code or "").strip()
    for a in sorted(t.attempts, key=lambda a: a.code.strip() != final):  # the final solution's attempt first
        if a.plan_index is None or not 0 <= a.plan_index < len(t.plans) or t.plans[a.plan_index].kind != "forward":
            continue
        passed = a.result is not None and a.result.passed
        accepted = a.critique is None or a.critique.verdict == "accept"
        if passed and accepted and a.plan_index not in good:
            good.append(a.plan_index)
    plans: list[Plan] = []
    for i in good:
        if t.plans[i].steps not in [p.steps for p in plans]:
            plans.append(t.plans[i])
    return plans


def records_for(t: Trajectory, run_id: str, *, modular: bool, forward_plans: bool, backward_plans: bool
                ) -> list[SFTRecord]:
    """The SFT records of one accepted trajectory (see the module docstring), ids ``<trajectory>/<variant>[/k]``."""
    provenance = Provenance(task_id=t.task.id, trajectory_id=t.id, source=t.task.source, lineage=t.task.lineage,
                            model=public_model(t.model), run_id=run_id)
    problem = problem_text(t)
    code_prompt = _request(CODE_INSTRUCTION, problem)
    plan_prompt = _request(PLAN_INSTRUCTION, problem)

    def record(rid: str, variant: SFTVariant, prompt: str, answer: str) -> SFTRecord:
        return SFTRecord(id=f"{t.id}/{rid}", task="plan" if variant.startswith("plan") else "code",
                         messages=(ChatMessage(role="user", content=prompt),
                                   ChatMessage(role="assistant", content=answer)),
                         provenance=provenance, tags=(variant,))

    out = [record("code", "code:final", code_prompt, code_answer(t.final_code or ""))]
    if modular and (answer := modular_answer(t)) is not None:
        out.append(record("code-modular", "code:modular", code_prompt, answer))
    if forward_plans:
        for k, plan in enumerate(verified_forward_plans(t)):
            out.append(record(f"plan-forward/{k}", "plan:forward", plan_prompt, plan_text(plan)))
    if backward_plans:
        backward = [p for p in t.plans if p.kind == "backward"]
        for k, plan in enumerate(backward):
            out.append(record("plan-backward" + (f"/{k}" if k else ""), "plan:backward", plan_prompt,
                              plan_text(plan)))
    return out
