"""The answer schemas: tolerant of what a model or the sim sends, and their conversions to records."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import agents
from agents import CriticAnswer, Decomposition, PlanAnswer, SpecAnswer
from codestill.schemas import Critique, ModuleSpec, Plan


def test_plan_answer_ignores_extra_fields_and_converts():
    answer = PlanAnswer.model_validate({"steps": [" Sort the list. ", "Return it."], "rationale": "r",
                                       "kind": "backward", "confidence": 0.9})
    assert answer.to_plan("backward") == Plan(steps=("Sort the list.", "Return it."), rationale="r",
                                              kind="backward")
    assert answer.to_plan().kind == "forward"
    with pytest.raises(ValidationError):
        PlanAnswer.model_validate({"steps": []})


def test_decomposition_specs_and_call_graph():
    d = Decomposition.model_validate({"modules": [
        {"name": "is_prime", "signature": "def is_prime(n: int) -> bool", "description": "d"},
        {"name": "primes_below", "signature": "def primes_below(n: int) -> list[int]",
         "calls": ["is_prime", "is_prime", "range", "primes_below"]},
    ]})
    assert d.specs() == (ModuleSpec(name="is_prime", signature="def is_prime(n: int) -> bool", description="d"),
                         ModuleSpec(name="primes_below", signature="def primes_below(n: int) -> list[int]"))
    # only calls to listed modules, deduplicated, no self-calls
    assert d.calls() == {"is_prime": (), "primes_below": ("is_prime",)}
    assert Decomposition.model_validate({}).specs() == ()
    with pytest.raises(ValidationError):
        SpecAnswer.model_validate({"name": "not an identifier", "signature": "def f()"})


@pytest.mark.parametrize(("raw", "expected"), [
    ({"verdict": "accept", "issues": [], "suggestion": ""}, Critique(verdict="accept")),
    ({"verdict": "reject", "reason": "tests_wrong", "issues": ["x"]},
     Critique(verdict="reject", reason="tests_wrong", issues=("x",))),
    ({"verdict": "reject"}, Critique(verdict="reject", reason="unsolvable")),
    # a reason belongs to a reject only; blank issues are dropped
    ({"verdict": "repair", "reason": "unsafe", "issues": ["a", " "], "weak_tests": True},
     Critique(verdict="repair", issues=("a",), weak_tests=True)),
])
def test_critic_answer_to_critique(raw, expected):
    assert CriticAnswer.model_validate(raw).to_critique() == expected


def test_critic_answer_rejects_an_unknown_verdict_or_reason():
    with pytest.raises(ValidationError):
        CriticAnswer.model_validate({"verdict": "maybe"})
    with pytest.raises(ValidationError):
        CriticAnswer.model_validate({"verdict": "reject", "reason": "bored"})


def test_schemas_describe_their_fields_to_the_model():
    for schema in (agents.PlanAnswer, agents.SpecAnswer, agents.CoderAnswer, agents.TestsAnswer,
                   agents.CriticAnswer, agents.ReferenceUse):
        props = schema.model_json_schema()["properties"]
        assert all(p.get("description") for p in props.values()), schema.__name__


# The text forms: what models write when simply asked (cf. issue 23's SmolLM2 replies), read back.

def test_plan_from_a_numbered_list_with_prose_and_continuations():
    text = ("Sure! Here is the plan:\n\n**Plan:**\n1. Sort the intervals by start.\n2) Walk them in order,\n"
            "   merging each one that overlaps the last kept.\nStep 3: Return the kept intervals.\n\n"
            "Rationale: sorting makes overlaps adjacent; O(n log n).")
    assert PlanAnswer.from_text(text) == {
        "steps": ["Sort the intervals by start.", "Walk them in order, merging each one that overlaps the last kept.",
                  "Return the kept intervals."],
        "rationale": "sorting makes overlaps adjacent; O(n log n)."}
    bullets = PlanAnswer.from_text("- Count the words.\n- Return the count.")
    assert bullets is not None and bullets["steps"] == ["Count the words.", "Return the count."]
    # no list: no plan (the prose is not split into made-up steps); code lines are never steps
    assert PlanAnswer.from_text("I would sort the list and then return it.") is None
    assert PlanAnswer.from_text("```python\n1. x\n```") is None


def test_code_from_a_reply_that_opens_with_its_block_and_rambles():
    text = ("```python\ndef square_perimeter(a):\n    return 4 * a\n```\n\nThis returns four times the side.\n\n"
            "Example:\n```python\nprint(square_perimeter(10))\n```\nAnd then we can also consider")
    answer = agents.CoderAnswer.model_validate(agents.CoderAnswer.from_text(text))
    assert answer.code == "def square_perimeter(a):\n    return 4 * a\n"  # the usage example is not the program
    assert answer.explanation.startswith("This returns four times the side.") and "```" not in answer.explanation
    # a later complete program is a correction and wins; a block that does not parse is nobody's program
    fixed = text + "\n\nCorrected:\n```python\ndef square_perimeter(a: int) -> int:\n    return a * 4\n```"
    corrected = agents.CoderAnswer.from_text(fixed)
    assert corrected is not None and "a * 4" in corrected["code"]
    assert agents.CoderAnswer.from_text("```python\ndef f(:\n```") is None
    # a block left open (the reply was cut inside it) is not a program
    assert agents.CoderAnswer.from_text("Here:\n```python\ndef f():\n    return 1\n") is None


def test_tests_from_every_block_with_asserts():
    text = ("Tests:\n```python\nassert f(1) == 2\n```\nand the edge case\n```python\nassert f(0) == 0\n```\n"
            "```python\nprint('no assert here')\n```")
    assert agents.TestsAnswer.from_text(text) == {"tests": "assert f(1) == 2\n\nassert f(0) == 0\n"}
    assert agents.TestsAnswer.from_text("assert f(1) == 2") is None  # not in a block: not the requested form


def test_a_copied_form_is_no_plan():
    assert PlanAnswer.from_text("1. <the first step for this task>\n2. <the next step>\n3. ...") is None
