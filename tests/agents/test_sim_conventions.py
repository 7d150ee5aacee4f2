"""The agents' prompts, read by the simulated teacher's own role logic (in-process, as it would read
them over HTTP as a tool call): each role is recognised, finds its problem by the quoted instruction,
and does what the prompt asks (a backward plan, the draft's modules, a repair, the visible verdict)."""

from __future__ import annotations

import pytest

from agents import TestsAnswer
from agents.coder import draft, write
from agents.critic import judge
from agents.decomposer import decompose
from agents.planner import backward_plan, plan
from agents.tester import suites, write_tests
from codestill.schemas import Plan
from tests.agents.conftest import exec_result, hit, run, scripted, sim_answer

PLAN = Plan(steps=("Check every pair.", "Return True when two are closer than the threshold."))
DRAFT = ("def pair_distance(a: float, b: float) -> float:\n    return abs(a - b)\n\n\n"
         "def has_close_elements(numbers, threshold):\n"
         "    return any(pair_distance(a, b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")


def _sent(model) -> list:
    return model.seen[0]


def test_forward_and_backward_plans(index, hidden, bank):
    model = scripted({"steps": ["x"]})
    run(plan(model, hidden, feedback="the first plan compared only neighbours"))
    answer, ask = sim_answer(index, _sent(model))
    assert ask.role == "planner" and ask.problem is not None and ask.problem.id == "humaneval/0"
    assert answer["kind"] == "forward"
    model = scripted({"steps": ["x"]})
    run(backward_plan(model, bank["humaneval/0"].reference))
    answer, ask = sim_answer(index, _sent(model))
    assert ask.role == "planner" and answer["kind"] == "backward"


@pytest.mark.parametrize("task_id", ["humaneval/0", "mbpp/2"])
def test_the_decomposer_reads_the_draft(index, bank, task_id):
    task = bank[task_id].to_task()
    model = scripted({"modules": []})
    run(decompose(model, task, PLAN, DRAFT))
    answer, ask = sim_answer(index, _sent(model))
    assert ask.role == "decomposer" and ask.problem is not None and ask.problem.id == task_id
    assert [m["name"] for m in answer["modules"]] == ["pair_distance", "has_close_elements"]


def test_the_coder_writes_whole_solutions_and_repairs(index, bank, mbpp):
    reference = bank["mbpp/2"].reference
    model = scripted({"code": "x"})
    run(draft(model, mbpp, PLAN))
    fresh, ask = sim_answer(index, _sent(model), bug_rate=1.0)
    assert ask.role == "coder" and ask.problem is not None and ask.problem.id == "mbpp/2"
    assert fresh["code"] != reference  # a fresh answer carries the planted bug
    # references named like a module must not turn the request into "write only that module"
    model = scripted({"code": "x"})
    run(write(model, mbpp, PLAN, [hit("similar_elements", "def similar_elements(a, b):\n    return ()\n")]))
    whole, _ = sim_answer(index, _sent(model))
    assert not whole["explanation"].startswith("The module")  # what a "module: <name>" request gets
    result = exec_result("failed", ("assert similar_elements((1, 2), (2, 3)) == (2,)", "failed", ""))
    model = scripted({"code": "x"})
    run(write(model, mbpp, PLAN, [], previous_code=fresh["code"], feedback="- wrong\n" + result.feedback()))
    repaired, _ = sim_answer(index, _sent(model), bug_rate=1.0)
    assert repaired["code"] == reference  # read as a repair: no planted bug


def test_the_tester_finds_its_problem_with_hidden_tests(index, hidden, bank):
    model = scripted({"tests": "assert True"})
    run(write_tests(model, hidden, bank["humaneval/0"].reference))
    answer, ask = sim_answer(index, _sent(model))
    assert ask.role == "tester" and ask.problem is not None and ask.problem.id == "humaneval/0"
    assert answer["entry_point"] == "has_close_elements"


def test_the_critic_follows_the_visible_result(index, hidden):
    visible, _ = suites(hidden, TestsAnswer(tests="assert has_close_elements([1.0, 1.05], 0.1) == True"))
    passed = exec_result("passed", ("assert has_close_elements([1.0, 1.05], 0.1) == True", "passed", ""))
    failed = exec_result("failed", ("assert has_close_elements([1.0, 1.05], 0.1) == True", "failed", "got False"))
    hidden_failed = exec_result("failed", ("hidden", "failed", ""))
    for result, hidden_result, verdict in ((failed, None, "repair"), (failed, passed, "repair"),
                                           (passed, hidden_failed, "accept")):
        model = scripted({"verdict": "accept"})
        run(judge(model, hidden, DRAFT, visible, result, hidden=hidden_result))
        answer, ask = sim_answer(index, _sent(model))
        assert ask.role == "critic" and answer["verdict"] == verdict
        if verdict == "repair":
            assert answer["issues"] == ["assert has_close_elements([1.0, 1.05], 0.1) == True: failed: got False"]
