"""The decomposer: module specs and their call graph, from the draft shown last."""

from __future__ import annotations

import re

from agents.decomposer import decompose
from codestill.schemas import ModuleSpec, Plan
from tests.agents.conftest import run, scripted

PLAN = Plan(steps=("Turn both tuples into sets.", "Intersect them and return a tuple."), rationale="sets")
DRAFT = "def to_set(xs):\n    return set(xs)\n\ndef similar_elements(a, b):\n    return tuple(to_set(a) & to_set(b))\n"


def test_decompose_returns_specs_and_calls(mbpp):
    model = scripted({"modules": [
        {"name": "to_set", "signature": "def to_set(xs: tuple) -> set", "description": "the set of xs"},
        {"name": "similar_elements", "signature": "def similar_elements(a: tuple, b: tuple) -> tuple",
         "description": "shared elements", "calls": ["to_set"]}]})
    reply = run(decompose(model, mbpp, PLAN, DRAFT))
    assert reply.ok and reply.value is not None
    assert [s.name for s in reply.value.specs()] == ["to_set", "similar_elements"]
    assert isinstance(reply.value.specs()[0], ModuleSpec)
    assert reply.value.calls() == {"to_set": (), "similar_elements": ("to_set",)}


def test_prompt_quotes_task_and_plan_and_ends_with_the_draft(mbpp):
    model = scripted({"modules": []})
    run(decompose(model, mbpp, PLAN, DRAFT))
    assert model.system.startswith("You are the codestill decomposer.")
    assert mbpp.instruction in model.user and "Intersect them and return a tuple." in model.user
    assert model.user.endswith(f"```python\n{DRAFT.strip()}\n```")
    # the draft is the only ```python block: the task's own tests are shown in an untagged fence
    assert len(re.findall(r"```python", model.user)) == 1
    assert "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))" in model.user


def test_an_unparsable_reply_is_a_recorded_error(mbpp):
    reply = run(decompose(scripted("modules: to_set", '{"modules": [{"name": "bad name"}]}'), mbpp, PLAN, DRAFT))
    assert not reply.ok and reply.error and "schema" in reply.error
