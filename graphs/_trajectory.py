"""The solve graph's output record: every plan, attempt, memory hit and the verdict, as a ``Trajectory``.

Attempts come back from the artefact store here, once, at the end (the state only carries keys).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from codestill.schemas import Attempt, ExecResult, Module, ModuleSpec, TestSuite, Trajectory, Usage
from graphs._commit import standalone_modules
from graphs._deps import SolveDeps
from graphs._state import SolveState
from tools.code import function_info
from tools.leaks import usable_explanation


def build_trajectory(state: SolveState, deps: SolveDeps, trajectory_id: str) -> Trajectory:
    a = deps.artefacts
    attempts = []
    for ref in state.get("attempts", []):
        attempts.append(Attempt(
            round=ref.round, plan_index=ref.plan_index, code=a.get(ref.code_key) if ref.code_key else "",
            tests=TestSuite.model_validate_json(a.get(ref.tests_key)) if ref.tests_key else None,
            result=ExecResult.model_validate_json(a.get(ref.result_key)) if ref.result_key else None,
            critique=ref.critique, mutation_score=ref.mutation_score, explanation=ref.explanation, sample=ref.sample,
            hidden_result=ExecResult.model_validate_json(a.get(ref.hidden_key)) if ref.hidden_key else None))
    chosen = state.get("chosen")
    verdict = state.get("verdict", "failed")
    accepted = verdict == "accepted" and chosen is not None and chosen.code_key is not None
    plans = list(state.get("plans", []))
    if (backward := state.get("backward")) is not None:
        plans.append(backward)
    modules: list[Module] = []
    if accepted and chosen is not None and chosen.code_key is not None:
        for name, source in standalone_modules(a.get(chosen.code_key)).items():
            spec = next((s for s in chosen.specs if s.name == name), None)
            signature = spec.signature if spec else function_info(source, name).signature
            modules.append(Module(spec=ModuleSpec(name=name, signature=signature,
                                                  description=chosen.descriptions.get(name, "")), code=source))
    return Trajectory(
        id=trajectory_id, task=state["task"], plans=tuple(plans), modules=tuple(modules),
        memory_hits=tuple(state.get("hits", [])), attempts=tuple(attempts),
        verdict="accepted" if accepted else ("failed" if verdict == "failed" else "rejected"),
        reason=state.get("reason", "") or "no reason recorded",
        final_code=a.get(chosen.code_key) if accepted and chosen is not None and chosen.code_key else None,
        mutation_score=chosen.mutation_score if accepted and chosen is not None else None,
        explanation=_explanation(state) if accepted else "",
        models={r: n for r, n in deps.model_names.items() if n}, selection_seed=state.get("selection_seed"),
        codestill_version=_version(),
        usage=state.get("usage", Usage()), duration_s=state.get("spent_s", 0.0) + state.get("tail_s", 0.0), model=deps.model_label(),
        failures=tuple(state.get("failures", [])), reused_modules=tuple(state.get("reused", [])),
        added_modules=tuple(state.get("added", [])))


def _version() -> str:
    try:
        return version("codestill")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return ""


def _explanation(state: SolveState) -> str:
    """The accepted code's explanation: the coder's later one (``explain``), else that of the reply that
    wrote the code, if it can stand in a training sample; else none (the export says so)."""
    chosen = state.get("chosen")
    text = state.get("explanation") or (chosen.explanation if chosen is not None else "")
    return text.strip() if usable_explanation(text) else ""
