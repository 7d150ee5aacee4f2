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
