"""The coder: draft and final response, repairs, the reference functions, and the pure helpers."""

from __future__ import annotations

import re

import pytest

from agents.coder import draft, leaks_memory, reference_uses, top_level_functions, write
from codestill.schemas import Plan
from tests.agents.conftest import exec_result, hit, run, scripted

PLAN = Plan(steps=("Intersect the two tuples as sets.", "Return the result as a tuple."))
ANSWER = {"code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n", "explanation": "sets"}
MODULE_LINE = re.compile(r"^\s*module:\s*\w+\s*$", re.M)
STATUS_LINE = re.compile(r"^status: (\w+)[ \t]*$", re.M)

GCD = "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n"
GCD_RESTYLED = 'def gcd(a, b):\n    """Greatest common divisor."""\n    while b:  # Euclid\n        a, b = (b, a%b)\n    return a\n'


def test_draft_returns_a_validated_answer(mbpp):
    model = scripted(ANSWER)
    reply = run(draft(model, mbpp, PLAN))
    assert reply.ok and reply.value is not None and reply.value.code == ANSWER["code"]
    assert reply.value.references == []
    assert model.system.startswith("You are the codestill coder.")
    assert mbpp.instruction in model.user and "Intersect the two tuples as sets." in model.user
    assert "similar_elements" in model.user  # the required entry point is named


def test_write_shows_each_reference_with_code_and_score(mbpp):
    hits = [hit("to_set", "def to_set(xs):\n    return set(xs)\n", score=0.91, spec_name="as_set"),
            hit("gcd", GCD, score=0.42)]
    model = scripted({**ANSWER, "references": [{"name": "to_set", "use": "adapted", "why": "inlined"},
                                               {"name": "gcd", "use": "ignored"}]})
    reply = run(write(model, mbpp, PLAN, hits))
    assert reply.ok and reply.value is not None
    assert [(r.name, r.use) for r in reply.value.references] == [("to_set", "adapted"), ("gcd", "ignored")]
    user = model.user
    assert mbpp.instruction in user
    assert "def to_set(xs):\n    return set(xs)" in user and "0.91" in user and "as_set" in user
    assert GCD.strip() in user and "0.42" in user
    assert MODULE_LINE.search(user) is None  # that line would ask for one module alone
    assert STATUS_LINE.search(user) is None  # not a repair
    assert "never mention the memory" in model.system


def test_write_without_hits_has_no_reference_section(mbpp):
    model = scripted(ANSWER)
    run(write(model, mbpp, PLAN, []))
    assert "Reference functions" not in model.user


def test_a_repair_prompt_carries_the_code_and_the_status_line(mbpp):
    result = exec_result("failed", ("assert similar_elements((1, 2), (2, 3)) == (2,)", "failed", "got (3,)"))
    feedback = "issues:\n- wrong element kept\nsuggestion: intersect, do not subtract\n\n" + result.feedback()
    model = scripted(ANSWER)
    run(write(model, mbpp, PLAN, [hit("gcd", GCD)], previous_code="def similar_elements(a, b):\n    return a\n",
              feedback=feedback))
    user = model.user
    assert STATUS_LINE.findall(user) == ["failed"]
    assert "def similar_elements(a, b):\n    return a" in user and "got (3,)" in user
    assert user.index("Reference functions") < user.index("previous solution") < user.index("status: failed")
    assert MODULE_LINE.search(user) is None


def test_an_unparsable_reply_is_a_recorded_error(mbpp):
    reply = run(write(scripted("Sorry, I cannot.", "Still sorry."), mbpp, PLAN, []))
    assert not reply.ok and reply.value is None and reply.error


def test_a_bare_code_block_is_read_as_the_code(mbpp):
    reply = run(draft(scripted("Here:\n```python\ndef similar_elements(a, b):\n    return ()\n```"), mbpp, PLAN))
    assert reply.ok and reply.value is not None and "return ()" in reply.value.code


def test_top_level_functions():
    code = "import math\n\n@staticmethod\ndef f(x):\n    def inner():\n        pass\n    return x\n\nasync def g():\n    pass\n"
    fns = top_level_functions(code)
    assert list(fns) == ["f", "g"]
    assert fns["f"].startswith("@staticmethod\ndef f(x):") and fns["f"].endswith("return x")
    assert top_level_functions("def broken(:\n") == {}


def test_reference_uses_is_decided_from_the_code():
    hits = [
        hit("gcd", GCD, id="m-gcd"),                                           # restyled copy
        hit("lcm", "def lcm(a, b):\n    return a * b // gcd(a, b)\n", id="m-lcm"),  # same name, new body
        hit("is_even", "def is_even(n):\n    return n % 2 == 0\n", id="m-even"),   # called only
        hit("square", "def square(n):\n    return n * n\n", id="m-square"),      # renamed copy
        hit("reverse", "def reverse(s):\n    return s[::-1]\n", id="m-rev"),      # unused
        hit("with_import", "import math\n\ndef hyp(a, b):\n    return math.sqrt(a * a + b * b)\n",
            id="m-hyp"),
    ]
    hits[5] = hit("hyp", hits[5].module.code, id="m-hyp")
    code = (f"import math\n\n{GCD_RESTYLED}\n\ndef lcm(a, b):\n    return abs(a * b) // gcd(a, b)\n\n"
            "def sq(n):\n    return n * n\n\n"
            "def hyp(a, b):\n    return math.sqrt(a * a + b * b)\n\n"
            "def solve(xs):\n    return [lcm(x, 2) for x in xs if is_even(x)]\n")
    assert reference_uses(code, hits) == {"m-gcd": "reused", "m-lcm": "adapted", "m-even": "adapted",
                                          "m-square": "adapted", "m-rev": "ignored", "m-hyp": "reused"}
    assert set(reference_uses("def broken(:", hits).values()) == {"ignored"}
    assert reference_uses(code, []) == {}


@pytest.mark.parametrize("text", [
    "I reused the reference function gcd.",
    "Using the retrieved modules, the solution...",
    "The relevant functions from the memory were adapted.",
    "# adapted from the function-module memory",
    "The helper comes from the memory.",
    "Building on the provided helper functions, ...",
])
def test_leaks_memory_catches_mentions(text):
    assert leaks_memory(text)


@pytest.mark.parametrize("text", [
    "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n",
    "Memoisation keeps the memory usage linear; values are retrieved from a dict.",
    "The function reduces the memory footprint by streaming.",
    "Euclid's algorithm: the reference for gcd computations.",
])
def test_leaks_memory_leaves_ordinary_text_alone(text):
    assert not leaks_memory(text)


@pytest.mark.parametrize(("text", "usable"), [
    ("Here is the code:", False),  # a label, not an explanation
    ("", False),
    ("I adapted the reference function from the memory so that it handles empty lists.", False),
    ("It walks the list once, keeping the largest value so far, so an empty list gives an empty result.", True),
])
def test_an_explanation_must_say_something_and_stand_on_its_own(text, usable):
    from agents.coder import usable_explanation

    assert usable_explanation(text) is usable


def test_same_code_ignores_formatting_comments_and_docstrings():
    from agents.coder import same_code

    a = "def f(x):\n    return x + 1\n"
    assert same_code(a, 'def f(x):\n    """Add one."""\n    # one more\n    return (x + 1)\n')
    assert not same_code(a, "def f(x):\n    return x - 1\n")
    assert not same_code(a, "def f(x) return")  # does not parse
