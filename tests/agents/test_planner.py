"""The planner: forward plans, replans, backward plans from code alone."""

from __future__ import annotations

import pytest

from agents import PlanAnswer
from agents.planner import backward_plan, plan
from codestill.schemas import Plan
from tests.agents.conftest import run, scripted

CODE = "def add(a, b):\n    return a + b\n"


def test_plan_returns_a_validated_answer(mbpp):
    model = scripted({"steps": ["Turn both into sets.", "Intersect them."], "rationale": "sets", "kind": "x"})
    reply = run(plan(model, mbpp))
    assert reply.ok and reply.value is not None
    assert reply.value.to_plan() == Plan(steps=("Turn both into sets.", "Intersect them."), rationale="sets")
    assert model.system.startswith("You are the codestill planner.")
    assert mbpp.instruction in model.user
    assert "Earlier plans failed" not in model.user


def test_a_replan_shows_why_earlier_plans_failed(mbpp):
    model = scripted({"steps": ["a"]})
    run(plan(model, mbpp, feedback="plan 1 returned a list, the tests expect a tuple"))
    assert mbpp.instruction in model.user
    assert model.user.index("Earlier plans failed") > model.user.index(mbpp.instruction)
    assert "plan 1 returned a list, the tests expect a tuple" in model.user


def test_backward_plan_shows_only_the_code(mbpp, bank):
    model = scripted({"steps": ["Intersect the sets."], "rationale": "r"})
    reference = bank["mbpp/2"].reference
    reply = run(backward_plan(model, reference))
    assert reply.ok and reply.value is not None and reply.value.to_plan("backward").kind == "backward"
    assert model.system.startswith("You are the codestill planner.")
    assert mbpp.instruction not in model.everything
    block = f"```python\n{reference.strip(chr(10))}\n```"
    # the code is the last block; only the answer's form (a numbered list) comes after it
    assert block in model.user and model.user.rstrip().endswith(PlanAnswer.text_format())


@pytest.mark.parametrize("call", ["forward", "backward"])
def test_an_unparsable_reply_is_a_recorded_error(mbpp, call):
    model = scripted("I would rather not.", "Still no JSON here.")
    coro = plan(model, mbpp) if call == "forward" else backward_plan(model, CODE)
    reply = run(coro)
    assert not reply.ok and reply.value is None
    assert reply.error and reply.tries == 2 and len(model.seen) == 2


def test_repair_rounds_are_passed_through(mbpp):
    model = scripted("nope", "nope", "nope")
    reply = run(plan(model, mbpp, repair_rounds=2))
    assert not reply.ok and reply.tries == 3 and len(model.seen) == 3
