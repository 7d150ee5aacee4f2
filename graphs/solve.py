"""The solve graph: five agents turn one instruction into a verified solution and a ``Trajectory``.

    plan (N plans, CodePLAN sampling) -> [review: a person accepts / edits / regenerates] ->
    Send one branch per plan (graphs._branch: draft, decompose, retrieve, code, test, critique,
    repair loop) -> select (on the union of the accepted branches' suites; a seeded random pick
    among the best) ->
    replan (bounded) | [confirm: a person may reject] -> backward plan and commit (memory), side by
    side -> finish

When no plan can be read from the planner (a weak model that writes code when asked for a plan), one
branch works from the task alone (``NO_PLAN``, ``solve.without_plan``): its attempts belong to no
recorded plan, so nothing is exported as plan data for it.

The bracketed steps are the session graph's (``build_graph(reviews=True)``, the default and what
Studio shows); batch runs compile the graph without them.

Every node and routing function is a coroutine function, the quick ones too: LangGraph runs a plain
function on a worker thread, a hop that costs a busy batch loop milliseconds each time.

Dependencies come in through the runtime context (``SolveDeps``); nothing here imports a concrete
chat model, sandbox or memory. ``build_graph(checkpointer)`` compiles it (nothing is compiled at import);
LangGraph Studio gets it through ``codestill.run.studio``, which builds the dependencies too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from agents import coder, planner
from agents._common import keyed_random
from codestill.schemas import Plan, TestSuite, Usage
from graphs._branch import build_branch
from graphs._commit import commit_modules
from graphs._deps import SolveDeps, node
from graphs._state import BranchResult, SolveState
from graphs._trajectory import build_trajectory


async def plan(state: SolveState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """CodePLAN plan sampling: N plans at once; identical ones are kept once (they would only repeat
    a branch)."""
    deps, start = runtime.context, time.perf_counter()
    replies = await asyncio.gather(*(planner.plan(deps.model("planner"), state["task"],
                                                  feedback=state.get("plan_feedback"), **deps.call_options(config, "planner"))
                                     for _ in range(deps.config.plans)))
    usage = sum((r.usage for r in replies), Usage())
    failures = [f"planner: {r.error}" for r in replies if r.value is None]
    plans: list[Plan] = []
    for r in replies:
        if r.value is not None and (p := r.value.to_plan("forward")).steps not in [q.steps for q in plans]:
            plans.append(p)
    first = len(state.get("plans", []))
    # A regenerated round keeps its number: a person asking for other plans is not a replan.
    again = state.get("regenerate", False)
    return {"plans": plans, "round_plans": list(range(first, first + len(plans))), "usage": usage,
            "failures": failures, "spent_s": time.perf_counter() - start, "regenerate": False,
            "plan_round": state.get("plan_round", -1) + (0 if again else 1)}


async def review_plans(state: SolveState, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """Interactive sessions only: a person accepts the plans, edits one, or asks for new ones."""
    round_plans, plans = state.get("round_plans", []), state.get("plans", [])
    if not runtime.context.interactive or not round_plans:
        return {}
    current = [plans[i] for i in round_plans]
    answer = interrupt({"kind": "plans", "plans": [p.model_dump() for p in current]})
    action = (answer or {}).get("action", "accept") if isinstance(answer, dict) else str(answer)
    if action == "edit":
        edited = [Plan.model_validate(p) for p in answer["plans"]]
        first = len(plans)
        return {"plans": edited, "round_plans": list(range(first, first + len(edited)))}
    if action == "regenerate":
        return {"round_plans": [], "regenerate": True, "plan_feedback": answer.get("feedback")}
    return {}


# The branch of a task whose planner wrote nothing readable, when ``solve.without_plan`` allows it.
NO_PLAN = Plan(steps=("Work out the solution directly from the task statement and its examples.",),
               rationale="No plan could be read from the planner's reply.")
NO_PLAN_INDEX = -1  # not an index of the trajectory's plans: its attempts belong to no recorded plan


async def fan_out(state: SolveState, runtime: Runtime[SolveDeps]) -> list[Send] | str:
    deps = runtime.context
    tokens_left = deps.config.token_budget - state.get("usage", Usage()).total_tokens
    seconds_left = deps.config.time_budget_s - state.get("spent_s", 0.0)
    budget = {"task": state["task"], "plan_round": state.get("plan_round", 0), "tokens_left": tokens_left,
              "seconds_left": seconds_left, "started": time.time()}
    if not state.get("round_plans"):
        if state.get("regenerate"):  # a person asked for other plans
            return "plan"
        # The planner's replies could not be read. A weak model that cannot plan may still write code:
        # one branch works from the task alone, and no plan is recorded for it (it is no plan data).
        if deps.config.without_plan and state.get("plan_round", 0) == 0:
            return [Send("branch", {**budget, "plan": NO_PLAN, "plan_index": NO_PLAN_INDEX, "sample": k})
                    for k in range(deps.config.samples)]
        return "select"
    # SelfCodeAlign's independent (response, tests) samples: solve.samples branches per plan.
    plans = state.get("plans", [])
    return [Send("branch", {**budget, "plan": plans[i], "plan_index": i, "sample": k})
            for i in state.get("round_plans", []) for k in range(deps.config.samples)]


def _rank(b: BranchResult) -> tuple[int, int, int, int]:
    """Wave 1's order (``gates = "legacy"``): raw pass counts across different suites, then the
    shortest code, which favours the bigger suite and terse, undocumented answers."""
    return (b.outcome == "accepted", b.passed, -b.repairs, -b.code_len)


async def _pick(task_id: str, plan_round: int, branches: list[BranchResult], deps: SolveDeps) -> tuple[BranchResult, str]:
    """Selection on common ground (``gates = "strict"``): accepted branches are compared on the union of
    their suites (each one's code run against every other's suite), and among those that pass the most
    of it the pick is random, seeded by ``selection_seed``, the task and the round (SelfCodeAlign), never
    the shortest code. Branches that were not accepted are compared by their share of passed tests, then
    fewest repairs. Returns the branch and a note for the reason (empty when there was no choice)."""
    seed = deps.config.selection_seed
    rng = keyed_random(f"{seed}|{task_id}|{plan_round}")
    accepted = [b for b in branches if b.outcome == "accepted" and b.code_key and b.tests_key]
    if len(accepted) < 2:
        if accepted:
            return accepted[0], ""
        def share(b: BranchResult) -> tuple[float, int]:
            return (b.passed / b.total if b.total else 0.0, -b.repairs)
        top = max(share(b) for b in branches)
        tied = [b for b in branches if share(b) == top]
        return rng.choice(tied), ""
    a = deps.artefacts
    suites = {(b.plan_index, b.sample): TestSuite.model_validate_json(a.get(b.tests_key))
              for b in accepted if b.tests_key}

    async def common(b: BranchResult) -> tuple[int, int]:
        others = [s for i, s in suites.items() if i != (b.plan_index, b.sample)]
        code = a.get(b.code_key) if b.code_key else ""  # every accepted branch here has code
        results = await asyncio.gather(*(deps.sandbox.run(code, s) for s in others))
        return b.passed + sum(r.n_passed for r in results), b.total + sum(len(r.tests) for r in results)

    counts = await asyncio.gather(*(common(b) for b in accepted))
    best = max(p for p, _ in counts)
    passers = [b for b, (p, _) in zip(accepted, counts, strict=True) if p == best]
    chosen = rng.choice(passers)
    total = max(t for _, t in counts)
    return chosen, (f"picked at random (selection seed {seed}) among {len(passers)} of {len(accepted)} accepted "
                    f"branches passing {best} of the {total} tests of all their suites")


async def select(state: SolveState, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """Test-based plan selection (CodePLAN) and keep-what-passes (SelfCodeAlign)."""
    deps = runtime.context
    this_round = [b for b in state.get("branches", []) if b.plan_round == state.get("plan_round", 0)]
    spent = max((b.elapsed_s for b in this_round), default=0.0)
    if not this_round:
        return {"chosen": None, "verdict": "rejected", "spent_s": spent,
                "reason": "model_failure: no plan could be read from the planner"}
    if deps.config.gates == "strict":
        best, note = await _pick(state["task"].id, state.get("plan_round", 0), this_round, deps)
    else:
        best, note = max(this_round, key=_rank), ""
    if best.outcome == "accepted":
        return {"chosen": best, "verdict": "accepted", "spent_s": spent, "selection_seed": deps.config.selection_seed
                if note else None, "reason": f"{best.reason}; {note}" if note else best.reason}
    budget = [b for b in this_round if b.critique is not None and b.critique.reason == "budget_exceeded"]
    stuck = all(b.outcome == "rejected" and b.critique is not None and b.critique.reason == "repeated_failure"
                for b in this_round)
    wants_replan = any(b.outcome == "replan" for b in this_round) or stuck
    if wants_replan and state.get("plan_round", 0) < deps.config.max_replans and not budget:
        why = "; ".join(f"plan {b.plan_index}: {b.reason}" for b in this_round)
        return {"chosen": None, "verdict": "failed", "reason": "replan", "plan_feedback": why, "spent_s": spent}
    if budget:
        return {"chosen": best, "verdict": "rejected", "reason": f"budget_exceeded: {budget[0].reason}",
                "spent_s": spent}
    if best.outcome == "replan":
        return {"chosen": best, "verdict": "rejected", "spent_s": spent,
                "reason": f"repeated_failure: the critic still asked for a new plan after {state.get('plan_round', 0)} replans"}
    return {"chosen": best, "verdict": "rejected", "reason": best.reason, "spent_s": spent}


async def after_select(state: SolveState) -> str:
    if state.get("verdict") == "failed" and state.get("reason") == "replan":
        return "plan"
    return "confirm" if state.get("verdict") == "accepted" else "finish"


async def after_select_unreviewed(state: SolveState) -> str | list[str]:
    """``after_select`` in a graph without ``confirm``: an accepted task goes on to both tail nodes."""
    route = await after_select(state)
    return ["backward", "commit", "explain"] if route == "confirm" else route


async def confirm(state: SolveState, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """Interactive sessions only: a person sees the accepted code and may still reject it."""
    if not runtime.context.interactive:
        return {}
    chosen = state.get("chosen")
    code = runtime.context.artefacts.get(chosen.code_key) if chosen and chosen.code_key else ""
    answer = interrupt({"kind": "accept", "code": code, "reason": state.get("reason", "")})
    action = answer.get("action", "accept") if isinstance(answer, dict) else str(answer)
    if action == "reject":
        why = answer.get("reason", "") if isinstance(answer, dict) else ""
        return {"verdict": "rejected", "reason": f"rejected by the user{': ' + why if why else ''}"}
    return {}


async def backward(state: SolveState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """CodePLAN backward reasoning: a plan written from the verified code alone, for the plan task."""
    deps = runtime.context
    chosen = state.get("chosen")
    if state.get("verdict") != "accepted" or not deps.config.backward_plan or chosen is None or chosen.code_key is None:
        return {}
    start = time.perf_counter()
    code = deps.artefacts.get(chosen.code_key)
    reply = await planner.backward_plan(deps.model("planner"), code, **deps.call_options(config, "planner"))
    out: dict[str, Any] = {"usage": reply.usage, "tail_s": time.perf_counter() - start}
    if reply.value is None:
        out["failures"] = [f"planner (backward): {reply.error}"]
    else:
        out["backward"] = reply.value.to_plan("backward")
    return out


async def explain(state: SolveState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """On accept only, and only when the accepted reply's own explanation cannot stand beside the code
    in a training sample (none, a label, or one that mentions the memory): the coder explains the
    accepted code. The new text is kept only if the program came back unchanged, so it explains the code
    that was verified. Runs beside ``backward`` and ``commit``."""
    deps, chosen = runtime.context, state.get("chosen")
    if state.get("verdict") != "accepted" or chosen is None or chosen.code_key is None:
        return {}
    if coder.usable_explanation(chosen.explanation):
        return {}
    start = time.perf_counter()
    code = deps.artefacts.get(chosen.code_key)
    reply = await coder.explain(deps.model("coder"), state["task"], code, **deps.call_options(config, "coder"))
    out: dict[str, Any] = {"usage": reply.usage, "tail_s": time.perf_counter() - start}
    if reply.value is None:
        out["failures"] = [f"coder (explain): {reply.error}"]
    elif not coder.same_code(reply.value.code, code):
        out["failures"] = ["coder (explain): the program came back changed, so its explanation was not kept"]
    elif not coder.usable_explanation(reply.value.explanation):
        out["failures"] = ["coder (explain): no usable explanation (none, too short, or it names the memory)"]
    else:
        out["explanation"] = reply.value.explanation.strip()
    return out


async def commit(state: SolveState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    """On accept only: verified new modules enter the memory; reused ones get their reuse counted.
    Runs beside ``backward``: neither needs the other, and the model call hides the memory's time."""
    if state.get("verdict") != "accepted" or runtime.context.memory is None:
        return {"reused": [], "added": []}
    start = time.perf_counter()
    reused, added = await commit_modules(state, runtime.context, _trajectory_id(config))
    return {"reused": reused, "added": added, "tail_s": time.perf_counter() - start}


def _trajectory_id(config: RunnableConfig) -> str:
    thread = (config.get("configurable") or {}).get("thread_id")
    return f"t-{thread}" if thread else f"t-{uuid.uuid4().hex[:16]}"


async def finish(state: SolveState, config: RunnableConfig, runtime: Runtime[SolveDeps]) -> dict[str, Any]:
    return {"trajectory": build_trajectory(state, runtime.context, _trajectory_id(config))}


def build_graph(checkpointer: Any = None, *, branch_checkpoints: bool = True, reviews: bool = True) -> Any:
    """The compiled solve graph. Sessions keep ``branch_checkpoints`` (a killed session goes on inside a
    branch); a batch run that checkpoints once per task (durability "exit") turns them off, since a
    branch's own checkpoints there cost two store round trips per task and resume nothing.

    ``reviews`` keeps the two places where an interactive session pauses for a person (``review_plans``
    after planning, ``confirm`` before accepting). Without a person they do nothing, yet each is a step
    of the graph, which a batch of tasks in flight on one event loop pays for: leaving both out took
    ``bench/solve_overhead.py`` from 0.154 to 0.114-0.118 (about 60 ms per task on the 2-core machine
    at concurrency 32). Batch runs (``solve``, ``codestill generate``) leave them out.
    """
    g = StateGraph(SolveState, context_schema=SolveDeps)
    g.add_node("plan", node(plan))
    g.add_node("branch", build_branch(branch_checkpoints))
    g.add_node("select", select)
    g.add_node("backward", node(backward))
    g.add_node("commit", node(commit))
    g.add_node("explain", node(explain))
    g.add_node("finish", node(finish))
    g.add_edge(START, "plan")
    g.add_edge("branch", "select")
    if reviews:
        g.add_node("review_plans", review_plans)
        g.add_node("confirm", confirm)
        g.add_edge("plan", "review_plans")
        g.add_conditional_edges("review_plans", fan_out, ["branch", "plan", "select"])
        g.add_conditional_edges("select", after_select, ["plan", "confirm", "finish"])
        g.add_edge("confirm", "backward")
        g.add_edge("confirm", "commit")
        g.add_edge("confirm", "explain")
    else:
        g.add_conditional_edges("plan", fan_out, ["branch", "plan", "select"])
        g.add_conditional_edges("select", after_select_unreviewed, ["plan", "backward", "commit", "explain", "finish"])
    g.add_edge(["backward", "commit", "explain"], "finish")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer, name="solve")

