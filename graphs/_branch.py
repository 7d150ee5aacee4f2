"""One plan's branch of the solve graph: draft -> decompose -> retrieve -> code -> test -> critique,
looping back to the coder (repair) or the tester (tests too weak) at most ``max_repairs`` times.

A branch ends in a ``BranchResult``: accepted, rejected (with a reason from the taxonomy), or replan.
Every budget is checked before each step, so an exhausted one ends the branch as
``reject: budget_exceeded``, never as a recursion error.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents import coder, decomposer, tester
from codestill.schemas import DISPUTE, Critique, ExecResult, MemoryHit, TestSuite, Usage
from graphs._deps import SolveDeps, node
from graphs._state import AttemptRef, BranchOutput, BranchResult, BranchState, Outcome
from graphs._verify import (
    LACKS_BLIND,
    adequacy,
    ask_critic,
    blind_again,
    did_not_run,
    dispute_why,
    disputed,
    lacks_blind,
    merge_suites,
    rounds_left,
    special,
    to_tester,
)

UNREADABLE = "your previous reply could not be used"


def _spent(state: BranchState) -> tuple[int, float]:
    return state.get("usage", Usage()).total_tokens, time.time() - state["started"]


def over_budget(state: BranchState) -> str | None:
    tokens, seconds = _spent(state)
    if tokens > state["tokens_left"]:
        return f"budget exceeded: {tokens} tokens used of the {state['tokens_left']} left"
    if seconds > state["seconds_left"]:
        return f"budget exceeded: {seconds:.0f} s of the {state['seconds_left']:.0f} s left"
    return None


def _end(state: BranchState, outcome: Outcome, reason: str, critique: Critique | None = None) -> dict[str, Any]:
    code_key = state.get("code_key")
    return {"done": BranchResult(
        plan_round=state["plan_round"], plan_index=state["plan_index"], sample=state.get("sample", 0),
        outcome=outcome, reason=reason, explanation=state.get("explanation", "") if code_key else "",
        critique=critique, code_key=code_key, tests_key=state.get("tests_key"), result_key=state.get("result_key"),
        passed=state.get("passed", 0), total=state.get("total", 0), repairs=state.get("repairs", 0),
        code_len=state.get("code_len", 0), mutation_score=state.get("mutation_score"), specs=tuple(state.get("specs", ())), descriptions=state.get("descriptions", {}),
        elapsed_s=time.time() - state["started"])}


def _budget_end(state: BranchState) -> dict[str, Any] | None:
    why = over_budget(state)
    if why is None:
        return None
    return _end(state, "rejected", why, Critique(verdict="reject", issues=(why,), reason="budget_exceeded"))


async def draft(state: BranchState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    deps = runtime.context
    reply = await coder.draft(deps.model("coder"), state["task"], state["plan"], sample=state.get("sample", 0),
                              **deps.call_options(config, "coder"))
    out: dict[str, Any] = {"usage": reply.usage, "draft_key": None}
    if reply.value is None:
        out["failures"] = [f"coder (draft): {reply.error}"]
    else:
        out["draft_key"] = deps.artefacts.put(reply.value.code)
        out["draft_explanation"] = reply.value.explanation
    return out


async def decompose(state: BranchState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    deps = runtime.context
    if (ended := _budget_end(state)) is not None:
        return ended
    draft_key = state.get("draft_key")
    if draft_key is None:  # nothing to decompose: the coder writes from the plan alone
        return {"specs": [], "descriptions": {}}
    reply = await decomposer.decompose(deps.model("decomposer"), state["task"], state["plan"],
                                       deps.artefacts.get(draft_key), **deps.call_options(config, "decomposer"))
    if reply.value is None:
        return {"usage": reply.usage, "specs": [], "descriptions": {},
                "failures": [f"decomposer: {reply.error}"]}
    specs = list(reply.value.specs())
    return {"usage": reply.usage, "specs": specs, "descriptions": {s.name: s.description for s in specs}}


async def retrieve(state: BranchState, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """Not a model call: the top verified modules per spec above the similarity threshold."""
    deps = runtime.context
    if state.get("done") is not None:
        return {}
    specs = state.get("specs", [])
    if deps.memory is None or deps.config.memory_k == 0 or not specs:
        return {"branch_hits": []}
    found = await asyncio.gather(*(deps.memory.asearch(s, k=deps.config.memory_k,
                                                       min_score=deps.config.memory_min_score)
                                   for s in specs))
    hits: dict[str, MemoryHit] = {}
    for hit in (h for hs in found for h in hs):
        if hit.module.id not in hits or hits[hit.module.id].score < hit.score:
            hits[hit.module.id] = hit
    ranked = sorted(hits.values(), key=lambda h: -h.score)
    return {"branch_hits": ranked, "hits": ranked}


async def write_code(state: BranchState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    deps = runtime.context
    if (ended := _budget_end(state)) is not None:
        return ended
    previous = state.get("code_key")
    first = previous is None and not state.get("feedback")
    draft_key = state.get("draft_key")
    if first and deps.config.draft_as_final and not state.get("branch_hits") and draft_key:
        # Nothing retrieved: asked again for the same task and plan, the coder would only write its draft
        # again (a second call that costs a whole reply and changes nothing). The draft is the response.
        code = deps.artefacts.get(draft_key)
        return {"code_key": draft_key, "code_len": len(code),
                "explanation": state.get("draft_explanation", "")}
    reply = await coder.write(deps.model("coder"), state["task"], state["plan"], state.get("branch_hits", []),
                              previous_code=deps.artefacts.get(previous) if previous else None,
                              feedback=state.get("feedback"), sample=state.get("sample", 0),
                              **deps.call_options(config, "coder"))
    if reply.value is None:
        # Asked again, the coder is told what was wrong with its reply (never the same prompt twice).
        return {"usage": reply.usage, "code_key": None, "failures": [f"coder: {reply.error}"],
                "feedback": f"{UNREADABLE}: {reply.error}"}
    return {"usage": reply.usage, "code_key": deps.artefacts.put(reply.value.code), "code_len": len(reply.value.code),
            "explanation": reply.value.explanation}


async def _sandbox(deps: SolveDeps, code: str, suite: TestSuite, config: RunnableConfig, name: str) -> ExecResult:
    # A traced span of its own, so the trace store keeps the program, the tests and the whole result.
    async def run(inputs: dict[str, Any]) -> ExecResult:
        return await deps.sandbox.run(inputs["program"], inputs["tests"])
    return await RunnableLambda(run, name=name).ainvoke({"program": code, "tests": suite}, config)


async def test(state: BranchState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    deps = runtime.context
    if state.get("done") is not None:
        return {}
    code_key = state.get("code_key")
    if code_key is None:
        return {"result_key": None, "hidden_result_key": None, "passed": 0, "total": 0}
    code = deps.artefacts.get(code_key)
    strict = deps.config.gates == "strict"
    out: dict[str, Any] = {"refused": None}
    tests_key = state.get("tests_key")
    if tests_key is None or state.get("test_feedback"):
        written_key = state.get("written_key")
        why = state.get("test_feedback") if strict else None
        previous = deps.artefacts.get(written_key) if strict and written_key else None
        # The first sample sees the code (and, asked again, why and its previous tests); the others are
        # fresh and blind, every time: a re-derived value that now agrees with the code must agree with
        # a sample that never saw the code, too.
        blind = deps.config.tester_samples - 1 if strict else 0
        replies = await asyncio.gather(
            tester.write_tests(deps.model("tester"), state["task"], code, state.get("specs", ()), why=why,
                               previous=previous, **deps.call_options(config, "tester")),
            *(tester.write_tests(deps.model("tester"), state["task"], None, state.get("specs", ()),
                                 sample=state.get("test_rounds", 0) * blind + k + 1, **deps.call_options(config, "tester"))
              for k in range(blind)))
        if len(replies) > 1:
            replies = await blind_again(deps, config, state["task"], code, state.get("specs", ()), list(replies))
        out["usage"] = sum((r.usage for r in replies), Usage())
        if failed := [f"tester: {r.error}" for r in replies if r.value is None]:
            out["failures"] = failed
        disputing = previous if why and DISPUTE in why else None  # the suite under dispute, if this is a dispute
        written, why = replies[0].value, None
        if strict:
            earlier = state.get("blind_key")
            written, why, blind_tests = merge_suites(deps, state["task"], code, replies,
                                                     deps.artefacts.get(earlier) if earlier else None, disputing)
            out["blind_key"] = deps.artefacts.put(blind_tests) if blind_tests else None
        visible, hidden = tester.suites(state["task"], written)
        out["tests_key"] = deps.artefacts.put(visible.model_dump_json())
        out["hidden_key"] = deps.artefacts.put(hidden.model_dump_json()) if hidden is not None else None
        out["written_key"] = deps.artefacts.put(written.tests) if written is not None else None
        out["test_feedback"] = None
        if why is not None:
            # Not run: a suite that cannot judge the code would only waste a sandbox run.
            return {**out, "refused": why, "result_key": None, "hidden_result_key": None, "passed": 0, "total": 0}
    else:
        visible = TestSuite.model_validate_json(deps.artefacts.get(tests_key))
        hidden_key = state.get("hidden_key")
        hidden = TestSuite.model_validate_json(deps.artefacts.get(hidden_key)) if hidden_key else None
    runs = [_sandbox(deps, code, visible, config, "sandbox")]
    if hidden is not None:
        runs.append(_sandbox(deps, code, hidden, config, "sandbox (hidden tests)"))
    results = await asyncio.gather(*runs)
    out["result_key"] = deps.artefacts.put(results[0].model_dump_json())
    out["hidden_result_key"] = deps.artefacts.put(results[1].model_dump_json()) if hidden is not None else None
    out["passed"] = sum(r.n_passed for r in results)
    out["total"] = sum(len(r.tests) for r in results)
    return out


def _hidden_note(result: ExecResult) -> str:
    return (f"Held-back tests (not shown): {result.n_passed}/{len(result.tests)} passed, status {result.status}. "
            "Re-read the instruction for requirements and edge cases the visible tests do not cover.")


async def critique(state: BranchState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    deps = runtime.context
    if state.get("done") is not None:
        return {}
    a = deps.artefacts
    code_key, tests_key, result_key = state.get("code_key"), state.get("tests_key"), state.get("result_key")
    attempt = {"plan_round": state["plan_round"], "plan_index": state["plan_index"], "sample": state.get("sample", 0),
               "round": state.get("repairs", 0), "code_key": code_key,
               "explanation": state.get("explanation", "") if code_key else ""}
    if code_key is None:
        why = state.get("feedback") or UNREADABLE
        if state.get("repairs", 0) >= deps.config.max_repairs:
            # The model's failure, not the plan's: no replan (a new plan gets the same unreadable replies).
            verdict = Critique(verdict="reject", issues=(why,), reason="model_failure")
        else:
            verdict = Critique(verdict="repair", issues=(why,),
                               suggestion="Answer with the complete code in the requested format.")
        return _after(state, deps, verdict, AttemptRef(**attempt, critique=verdict), Usage())
    code, task = a.get(code_key), state["task"]
    strict = deps.config.gates == "strict"
    if strict and (why := state.get("refused")):
        return _to_tester(state, deps, f"your tests were refused: {why}", {**attempt, "tests_key": tests_key},
                          give_up=True)
    # With code and no refusal, the test node wrote a suite and ran it.
    assert tests_key is not None and result_key is not None, "critique before the tests ran"
    tests = TestSuite.model_validate_json(a.get(tests_key))
    result = ExecResult.model_validate_json(a.get(result_key))
    hidden_key = state.get("hidden_result_key")
    hidden = ExecResult.model_validate_json(a.get(hidden_key)) if hidden_key else None
    ran = {**attempt, "tests_key": tests_key, "result_key": result_key, "hidden_key": hidden_key,
           "passed": state.get("passed", 0), "total": state.get("total", 0)}
    score: float | None = None
    if strict and result.status != "infra_error":
        if (why := did_not_run(result, code, task.entry_point or tests.entry_point)) is not None and rounds_left(state, deps):
            return _to_tester(state, deps, why, ran)
        lines = disputed(task, result, state.get("disputed", [])) if not result.passed else []
        if lines and rounds_left(state, deps):
            out = _to_tester(state, deps, dispute_why(lines), ran)
            return {**out, "disputed": [*state.get("disputed", []), *lines]}
        if result.passed and (hidden is None or hidden.passed):
            if (bent := special(task, code, tests)) is not None:
                return _with_feedback(_after(state, deps, bent, AttemptRef(**ran, critique=bent), Usage()),
                                      bent, result, hidden)
            score, why = await adequacy(deps, code, tests)
            if why is not None:
                return _to_tester(state, deps, why, {**ran, "mutation_score": score}, give_up=True)
            if lacks_blind(deps, task, state.get("blind_key")):
                return _to_tester(state, deps, LACKS_BLIND, {**ran, "mutation_score": score}, give_up=True)
    verdict, usage, failures = await ask_critic(deps, config, task, code, tests, result, hidden)
    if strict and verdict.verdict == "accept":
        verdict = verdict.model_copy(update={"issues": (_evidence(state, score), *verdict.issues)})
    ref = AttemptRef(**ran, critique=verdict, mutation_score=score)
    out = _after(state, deps, verdict, ref, usage or Usage(), mutation_score=score)
    if failures:
        out["failures"] = failures
    return _with_feedback(out, verdict, result, hidden)


def _evidence(state: BranchState, score: float | None) -> str:
    """What an accept rests on, as the first line of its reason."""
    judged = f", mutation score {score:.2f}" if score is not None else ""
    return f"{state.get('passed', 0)}/{state.get('total', 0)} tests pass{judged}, and the critic accepts"


def _with_feedback(out: dict[str, Any], verdict: Critique, result: ExecResult,
                   hidden: ExecResult | None) -> dict[str, Any]:
    feedback = [f"Review: {'; '.join(verdict.issues)}", verdict.suggestion, result.feedback()]
    if hidden is not None and not hidden.passed:
        feedback.insert(2, _hidden_note(hidden))
    out["feedback"] = "\n".join(f for f in feedback if f)
    return out


def _to_tester(state: BranchState, deps: SolveDeps, why: str, ref: dict[str, Any], *,
               give_up: bool = False) -> dict[str, Any]:
    """The tester again, told ``why``. With its rounds spent the branch ends (``give_up``, the caller's
    choice for a suite that cannot judge at all) or goes on to the coder as a plain failure."""
    if not rounds_left(state, deps) and give_up:
        why = (f"repeated_failure: the tests are still not fit to judge the code after "
               f"{state.get('test_rounds', 0)} rounds ({why})")
        verdict = Critique(verdict="reject", issues=(why,), reason="repeated_failure")
        return {"attempts": [AttemptRef(**ref, critique=verdict)], "critique": verdict,
                **_end(state, "rejected", why, verdict)}
    out = to_tester(state, why)
    return {**out, "attempts": [AttemptRef(**ref, critique=out["critique"])]}


def _after(state: BranchState, deps: SolveDeps, verdict: Critique, ref: AttemptRef, usage: Usage, *,
           mutation_score: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"usage": usage, "attempts": [ref], "critique": verdict}
    repairs = state.get("repairs", 0)
    if verdict.verdict == "accept":
        out.update(_end({**state, "mutation_score": mutation_score}, "accepted",
                        "; ".join(verdict.issues) or "the tests pass and the critic accepts", verdict))
    elif verdict.verdict == "reject":
        out.update(_end(state, "rejected", f"{verdict.reason}: {'; '.join(verdict.issues)}".rstrip(": "), verdict))
    elif verdict.verdict == "replan":
        out.update(_end(state, "replan", "; ".join(verdict.issues) or "the plan does not work", verdict))
    elif repairs >= deps.config.max_repairs:
        why = f"repeated_failure: still failing after {repairs} repairs ({'; '.join(verdict.issues)})"
        out.update(_end(state, "rejected", why, verdict.model_copy(update={"verdict": "reject",
                                                                            "reason": "repeated_failure"})))
    else:
        out["repairs"] = repairs + 1
        if verdict.weak_tests:
            out["test_feedback"] = "; ".join(verdict.issues)
    return out


async def route(state: BranchState) -> str:
    if state.get("done") is not None:
        return "finish"
    return "test" if state.get("test_feedback") else "code"


async def finish(state: BranchState) -> dict[str, Any]:
    done = state.get("done") or _end(state, "rejected", "the branch ended without a verdict")["done"]
    return {"branches": [done]}


async def _ended(state: BranchState) -> str:
    return "finish" if state.get("done") is not None else "next"


def build_branch(checkpoints: bool = True) -> Any:
    """``checkpoints=False``: the branch keeps no checkpoints of its own (a resumed task redoes a branch
    that was cut short), for graphs whose parent checkpoints only at the end anyway."""
    g = StateGraph(BranchState, context_schema=SolveDeps, output_schema=BranchOutput)
    g.add_node("draft", node(draft))
    g.add_node("decompose", node(decompose))
    g.add_node("retrieve", retrieve)
    g.add_node("code", node(write_code))
    g.add_node("test", node(test))
    g.add_node("critique", node(critique))
    g.add_node("finish", finish)
    g.add_edge(START, "draft")
    g.add_edge("draft", "decompose")
    g.add_conditional_edges("decompose", _ended, {"finish": "finish", "next": "retrieve"})
    g.add_edge("retrieve", "code")
    g.add_conditional_edges("code", _ended, {"finish": "finish", "next": "test"})
    g.add_edge("test", "critique")
    g.add_conditional_edges("critique", route, {"finish": "finish", "code": "code", "test": "test"})
    g.add_edge("finish", END)
    return g.compile(checkpointer=None if checkpoints else False)
