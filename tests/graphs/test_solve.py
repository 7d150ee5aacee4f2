"""Every route of the solve graph, with scripted agents, on the in-process fakes of the sandbox and the
memory (``LocalSandbox``: the sandbox's own harness and verdicts in local processes; ``FakeMemory``: the
memory's contract without Chroma). Both pass the backends' conformance suites; the graph on the real
Docker sandbox and Chroma memory is tests/e2e's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from codestill.config import SolveConfig
from codestill.schemas import Attempt, Critique, Task, TestSuite, Trajectory
from graphs import AGENT_ROLES, SolveDeps, build_graph, solve
from memory import FakeMemory, FakeStore
from tests.graphs.conftest import RoleModel, shared_sandbox

TASK = Task(id="t/add", instruction="Write a function add_pair(a, b) that returns the sum of a and b.",
            entry_point="add_pair", tests=TestSuite(code="assert add_pair(1, 2) == 3\n"))
GOOD = "def add_pair(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n"
BAD = "def add_pair(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a - b\n"
PLAN = {"steps": ["Add a and b.", "Return the sum."], "rationale": "One expression."}
TESTS = {"tests": "assert add_pair(2, 3) == 5\nassert add_pair(0, 0) == 0\n", "entry_point": "add_pair"}


EXPLANATION = "Returns a + b: Python's + adds ints and floats alike, so no case needs special handling."


def _critique(attempt: Attempt) -> Critique:
    assert attempt.critique is not None, attempt
    return attempt.critique


def answers(coder: Any = GOOD, critic: Any = None, planner: Any = PLAN, tester: Any = TESTS) -> Any:
    """Default answers per role; ``critic=None`` follows the last status line, as a careful critic would."""
    def answer(role: str, text: str) -> Any:
        if role == "planner":
            return planner(text) if callable(planner) else planner
        if role == "decomposer":
            return {"modules": [{"name": "add_pair", "signature": "def add_pair(a, b)",
                                 "description": "Add two numbers and return the sum."}]}
        if role == "coder":
            code = coder(text) if callable(coder) else coder
            return {"code": code, "explanation": EXPLANATION} if code is not None else "no idea"
        if role == "tester":
            return tester(text) if callable(tester) else tester
        if role == "critic":
            if critic is not None:
                return critic(text) if callable(critic) else critic
            status = [line for line in text.splitlines() if line.startswith("status: ")][-1]
            return {"verdict": "accept"} if status == "status: passed" else {
                "verdict": "repair", "issues": ["a test fails"], "suggestion": "fix it"}
        return "?"
    return answer


_STORES: dict[Path, FakeStore] = {}


def memory_at(folder: Path) -> FakeMemory:
    """The memory of ``folder``: every memory opened on one folder shares its records (as a store on
    disk would), and a test's runs in other folders have memories of their own."""
    return FakeMemory(store=_STORES.setdefault(folder, FakeStore()))


def run(tmp_path: Path, model: RoleModel, task: Task = TASK, memory: FakeMemory | None = None,
        graph: Any = None, **solve: Any) -> Trajectory:
    """Solve ``task`` on the session's local sandbox with ``memory`` (default: ``memory_at(tmp_path)``).
    One tester sample unless asked: these tests count calls and attempts route by route; test_gates.py
    covers the blind second sample."""
    solve.setdefault("tester_samples", 1)

    async def go() -> Trajectory:
        deps = SolveDeps(models={r: model for r in AGENT_ROLES}, sandbox=shared_sandbox(), memory=memory,
                         config=SolveConfig(**solve), model_names={r: "scripted" for r in AGENT_ROLES})
        return await _solve(task, deps, graph=graph)
    if memory is None:  # not `or`: an empty memory is falsy
        memory = memory_at(tmp_path)
    return asyncio.run(go())


_solve = solve


def test_batch_runs_leave_out_the_steps_that_wait_for_a_person():
    assert {"review_plans", "confirm"} <= set(build_graph().get_graph().nodes)
    assert not {"review_plans", "confirm"} & set(build_graph(reviews=False).get_graph().nodes)


@pytest.mark.parametrize("reviews", [False, True], ids=["batch graph", "session graph"])
def test_accepted_first_time_enters_the_memory_with_a_backward_plan(tmp_path, reviews):
    model = RoleModel(answer=answers())
    t = run(tmp_path, model, graph=build_graph(reviews=reviews))
    assert t.verdict == "accepted" and t.final_code == GOOD
    assert [p.kind for p in t.plans] == ["forward", "backward"]
    assert [_critique(a).verdict for a in t.attempts] == ["accept"]
    assert t.attempts[0].result is not None and t.attempts[0].result.passed
    # the given (visible) test and the tester's two ran
    assert t.attempts[0].result.n_passed == 3
    with memory_at(tmp_path) as m:
        stored = list(m.iter_all())
    assert [s.name for s in stored] == ["add_pair"] and stored[0].verified
    assert stored[0].task_id == TASK.id and stored[0].trajectory_id == t.id and t.added_modules == (stored[0].id,)
    assert stored[0].description == "Add two numbers and return the sum."
    assert [r for r, _ in model.seen].count("planner") == 2  # one forward plan, one backward


def test_the_memory_commit_runs_while_the_backward_plan_is_written(tmp_path):
    # The backward planner answers only once the accepted module is in the memory: run one after the
    # other, the commit would start after this answer and the wait would time out.
    memory = memory_at(tmp_path)
    seen_in_memory: list[int] = []

    def planner(text: str) -> Any:  # the scripted model answers on a worker thread: it may wait
        if "verified solution" in text:
            deadline = time.monotonic() + 30
            while len(memory) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_in_memory.append(len(memory))
        return PLAN

    t = run(tmp_path, RoleModel(answer=answers(planner=planner)), memory=memory)
    assert t.verdict == "accepted" and [p.kind for p in t.plans] == ["forward", "backward"]
    assert seen_in_memory == [1] and len(t.added_modules) == 1
    assert t.duration_s > 0


def test_a_failing_attempt_is_repaired(tmp_path):
    model = RoleModel(answer=answers(coder=lambda text: GOOD if "status: failed" in text else BAD))
    t = run(tmp_path, model)
    assert t.verdict == "accepted" and t.final_code == GOOD
    # the tester's failing asserts are disputed first (it re-derives them and keeps them), then the coder repairs
    assert [_critique(a).verdict for a in t.attempts] == ["repair", "repair", "accept"]
    assert _critique(t.attempts[0]).weak_tests and not _critique(t.attempts[1]).weak_tests
    assert [a.round for a in t.attempts] == [0, 0, 1] and t.attempts[0].code == BAD
    assert t.attempts[0].result is not None and not t.attempts[0].result.passed
    assert t.mutation_score == 1.0 and t.attempts[-1].mutation_score == 1.0


def test_the_critic_asks_for_a_new_plan(tmp_path):
    def critic(text: str) -> Any:
        return {"verdict": "replan", "issues": ["wrong approach"]} if "a - b" in text else {"verdict": "accept"}

    plans = iter([{"steps": ["Subtract b from a."]}, {"steps": ["Add a and b."]}])
    model = RoleModel(answer=answers(critic=critic, planner=lambda text: next(plans, PLAN),
                                     coder=lambda text: BAD if "Subtract" in text else GOOD))
    t = run(tmp_path, model, critic_on_failure=True)
    assert t.verdict == "accepted" and t.final_code == GOOD
    assert [p.steps for p in t.plans if p.kind == "forward"] == [("Subtract b from a.",), ("Add a and b.",)]
    assert [_critique(a).verdict for a in t.attempts] == ["repair", "replan", "accept"]  # a dispute first
    replan_prompt = [text for role, text in model.seen if role == "planner"][1]
    assert "wrong approach" in replan_prompt  # the planner hears why the last plan failed


def test_a_failing_run_is_repaired_without_asking_the_critic(tmp_path):
    # By default the critic is asked only about code that passed: on a failing run the rules would turn
    # its accept or repair into the same repair. Its replan is given up; bounded repairs still replan.
    critiqued: list[str] = []

    def critic(text: str) -> Any:
        critiqued.append(text)
        return {"verdict": "replan", "issues": ["wrong approach"]} if "a - b" in text else {"verdict": "accept"}

    plans = iter([{"steps": ["Subtract b from a."]}, {"steps": ["Add a and b."]}])
    model = RoleModel(answer=answers(critic=critic, planner=lambda text: next(plans, PLAN),
                                     coder=lambda text: BAD if "Subtract" in text else GOOD))
    t = run(tmp_path, model, max_repairs=1)
    assert t.verdict == "accepted" and t.final_code == GOOD
    assert ["a - b" in text for text in critiqued] == [False]  # asked once, about the passing code
    first_plan = [_critique(a) for a in t.attempts if a.plan_index == 0]
    assert [c.verdict for c in first_plan] == ["repair", "repair", "repair"]  # a dispute, then two failing runs
    assert all(c.issues[0].startswith("the tests did not pass") for c in first_plan[1:])
    assert not any("wrong approach" in i for c in first_plan for i in c.issues)
    assert "repeated_failure" in [text for role, text in model.seen if role == "planner"][1]  # hence the replan


def test_a_rejected_task_leaves_the_memory_empty(tmp_path):
    model = RoleModel(answer=answers(critic={"verdict": "reject", "reason": "unsafe", "issues": ["deletes files"]}))
    t = run(tmp_path, model)
    assert t.verdict == "rejected" and t.reason.startswith("unsafe") and t.final_code is None
    assert _critique(t.attempts[0]).reason == "unsafe" and t.added_modules == ()
    with memory_at(tmp_path) as m:
        assert len(m) == 0


def test_repeated_failure_is_bounded(tmp_path):
    model = RoleModel(answer=answers(coder=BAD))
    t = run(tmp_path, model, max_repairs=1, max_replans=1)
    assert t.verdict == "rejected" and t.reason.startswith("repeated_failure")
    # two plan rounds (the replan after the first round failed), three attempts each: the tester re-derives
    # its failing asserts once, then 1 + max_repairs attempts of the coder
    assert len(t.attempts) == 6 and model.calls("planner") == 2
    assert [_critique(a).weak_tests for a in t.attempts] == [True, False, False] * 2


def test_a_token_budget_ends_the_task_not_a_recursion_error(tmp_path):
    model = RoleModel(answer=answers(coder=BAD), tokens=1000)
    t = run(tmp_path, model, token_budget=4500, max_repairs=50)
    assert t.verdict == "rejected" and t.reason.startswith("budget_exceeded"), t.reason
    assert t.usage.total_tokens < 4500 + 3000  # stopped within a step or two of the budget


def test_unreadable_replies_are_recorded_failures(tmp_path):
    model = RoleModel(answer=lambda role, text: "I would rather not say.")
    t = run(tmp_path, model)
    assert t.verdict == "rejected" and t.reason.startswith("model_failure")
    # the planner first, then the branch without a plan, whose coder fared no better
    assert t.failures[0].startswith("planner") and any(f.startswith("coder") for f in t.failures)


def test_unreadable_coder_and_critic_replies_do_not_crash(tmp_path):
    model = RoleModel(answer=answers(coder=None, critic="not json"))
    t = run(tmp_path, model, max_repairs=1, max_replans=0)
    # the model failed, not the plan: a model_failure (no replan would get readable replies either)
    assert t.verdict == "rejected" and t.reason.startswith("model_failure")
    assert any(f.startswith("coder") for f in t.failures)
    # asked again, the coder is told what was wrong: never the identical request twice
    coder = [text for role, text in model.seen if role == "coder"]
    assert len(coder) > 2 and len(set(coder)) == len(coder)
    assert "your previous reply could not be used" in coder[-1]


def test_unreadable_coder_replies_do_not_trigger_a_replan(tmp_path):
    model = RoleModel(answer=answers(coder=None))
    t = run(tmp_path, model, max_repairs=1, max_replans=2)
    assert t.verdict == "rejected" and t.reason.startswith("model_failure")
    assert model.calls("planner") == 1  # a formatting failure is not the plan's fault


def test_plan_sampling_keeps_the_branch_that_passes(tmp_path):
    asked = [0]

    def planner(text: str) -> Any:
        asked[0] += 1
        return {"steps": ["Subtract b from a."]} if asked[0] == 1 else PLAN

    model = RoleModel(answer=answers(planner=planner, coder=lambda text: BAD if "Subtract" in text else GOOD))
    t = run(tmp_path, model, plans=2, max_repairs=0, max_replans=0)
    assert t.verdict == "accepted" and t.final_code == GOOD
    by_plan = {a.plan_index: _critique(a).verdict for a in t.attempts}
    assert sorted(by_plan.values()) == ["accept", "repair"]


def test_weak_tests_are_sent_back_to_the_tester(tmp_path):
    asked = [0]

    def tester(text: str) -> Any:
        asked[0] += 1
        if asked[0] == 1:
            return {"tests": "assert isinstance(add_pair(1, 2), int)\n"}
        return {"tests": TESTS["tests"] + "assert add_pair(-1, 1) == 0\n"}

    task = TASK.model_copy(update={"tests": None})
    model = RoleModel(answer=answers(tester=tester, critic={"verdict": "accept"}))
    t = run(tmp_path, model, task=task)
    assert t.verdict == "accepted"
    assert _critique(t.attempts[0]).weak_tests and _critique(t.attempts[0]).verdict == "repair"
    assert t.attempts[0].result is None  # refused before it ran
    assert model.calls("tester") == 2 and model.calls("coder") == 1  # the draft is the solution (nothing retrieved)
    assert t.attempts[1].tests is not None and "isinstance" not in t.attempts[1].tests.code
    again = [text for role, text in model.seen if role == "tester"][1]
    assert "## Why you are asked again" in again and "no assert compares a call of `add_pair`" in again
    assert "assert isinstance(add_pair(1, 2), int)" in again  # its previous tests, shown


def test_hidden_tests_block_acceptance_and_never_reach_a_prompt(tmp_path):
    task = TASK.model_copy(update={"tests": TestSuite(code="assert add_pair(40, 2) == 42  # SECRET-CASE\n"),
                                   "hidden_tests": True})
    tester = {"tests": "assert add_pair(0, 0) == 0\nassert add_pair(3, 0) == 3\n"}  # BAD passes these
    model = RoleModel(answer=answers(coder=BAD, tester=tester, critic={"verdict": "accept"}))
    t = run(tmp_path, model, task=task, max_repairs=1, max_replans=0)
    assert t.verdict == "rejected"
    assert all(_critique(a).verdict != "accept" for a in t.attempts)
    assert not any("SECRET-CASE" in text or "40, 2" in text for _, text in model.seen)


@pytest.mark.parametrize("interactive", [False])
def test_the_trajectory_round_trips_as_a_record(tmp_path, interactive):
    t = run(tmp_path, RoleModel(answer=answers()))
    assert Trajectory.model_validate_json(t.model_dump_json()) == t


def test_a_planner_that_cannot_plan_still_gets_code_tested(tmp_path):
    # what SmolLM2-135M does when asked for a plan: it writes code (no numbered list, no JSON)
    code_not_plan = "```python\ndef add_pair(a, b):\n    return a + b\n```\nThis function adds."
    model = RoleModel(answer=answers(planner=code_not_plan))
    t = run(tmp_path / "a", model)
    assert t.verdict == "accepted" and t.final_code == GOOD
    assert t.plans == ()  # no plan was read, so none is recorded as plan data (nor a backward one)
    assert t.attempts and all(a.plan_index == -1 for a in t.attempts)
    assert any(f.startswith("planner") for f in t.failures)
    # without_plan=False: wave 1's rule, the task ends at the planner
    model = RoleModel(answer=answers(planner=code_not_plan))
    t = run(tmp_path / "b", model, without_plan=False)
    assert t.verdict == "rejected" and t.reason.startswith("model_failure") and model.calls("coder") == 0


@pytest.mark.parametrize("draft_as_final", [True, False])
def test_with_nothing_retrieved_the_draft_is_the_response(tmp_path, draft_as_final):
    model = RoleModel(answer=answers())
    t = run(tmp_path, model, draft_as_final=draft_as_final)
    assert t.verdict == "accepted" and t.final_code == GOOD and t.explanation == EXPLANATION
    # the empty memory returned nothing: the draft stands (one coder call), unless asked to write it again
    assert model.calls("coder") == (1 if draft_as_final else 2)


def test_independent_samples_are_kept_and_one_is_picked_with_its_seed(tmp_path):
    model = RoleModel(answer=answers())
    t = run(tmp_path, model, samples=3, selection_seed=7)
    drafts = [text for role, text in model.seen if role == "coder" and "direct solution" in text]
    assert len(drafts) == 3 and len({d for d in drafts}) == 3  # each sample is a request of its own
    assert sum("Independent sample" in d for d in drafts) == 2  # the first asks as a single sample does
    assert t.verdict == "accepted" and sorted(a.sample for a in t.attempts) == [0, 1, 2]
    assert all(_critique(a).verdict == "accept" for a in t.attempts)  # every passer is in the trajectory
    assert t.selection_seed == 7 and "selection seed 7" in t.reason


LEAKY = "I reused the reference function from the memory and it passes."
SELF_CONTAINED = "It returns a + b; adding needs no loop, so every pair of numbers takes one step."


@pytest.mark.parametrize("returned, kept", [(GOOD, SELF_CONTAINED), (BAD, "")], ids=["unchanged", "changed"])
def test_an_explanation_that_names_the_memory_is_asked_for_again(tmp_path, returned, kept):
    def answer(role: str, text: str) -> Any:
        if role == "coder" and "passed its tests. Explain it" in text:
            return {"code": returned, "explanation": SELF_CONTAINED}
        if role == "coder":
            return {"code": GOOD, "explanation": LEAKY}
        return answers()(role, text)

    model = RoleModel(answer=answer)
    t = run(tmp_path, model)
    assert t.verdict == "accepted" and t.final_code == GOOD
    assert t.attempts[-1].explanation == LEAKY and model.calls("coder") == 2  # the draft, then explain
    # the explanation is kept only for the program that was verified
    assert t.explanation == kept
    assert any("came back changed" in f for f in t.failures) == (not kept)
