"""The simulator's pure parts, without a server: the bank, matching, plans, schema fitting, bug planting."""

from __future__ import annotations

import ast
import warnings

from codestill.data import load_bank, load_humaneval, load_mbpp, load_mbpp_full, load_mbpp_split, mbpp_split
from codestill.schemas import Task
from codestill.sim import mutants, plant_bug
from codestill.sim._bank import ProblemIndex
from codestill.sim._code import last_python_block, module_source
from codestill.sim._fit import fit
from codestill.sim._plan import STYLES, plan_of


def test_the_bank_has_every_problem_and_every_reference_compiles():
    assert len(load_mbpp()) == 427 and len(load_humaneval()) == 164 and len(load_mbpp_full()) == 974
    bank = load_bank()
    # sanitized MBPP, full MBPP's train/validation/prompt problems that sanitized lacks (254 + 47 + 3), HumanEval
    assert len({p.id for p in bank}) == len(bank) == 427 + 304 + 164
    # The sim can teach on every train and validation problem, in the wording the teaching seeds use ...
    teaching = load_mbpp_split("train", "validation")
    assert len(teaching) == 464 and set(teaching) <= set(bank)
    # ... and knows no test problem that sanitized MBPP left out: nothing is taught on the test split.
    sanitized = {p.id for p in load_mbpp()}
    assert all(p.id in sanitized for p in bank if mbpp_split(p.id) == "test")
    for p in bank:
        with warnings.catch_warnings():  # some MBPP solutions have "\w" in non-raw strings: upstream's
            warnings.simplefilter("ignore", DeprecationWarning)
            compile(p.reference, p.id, "exec")
        compile(p.tests.code, p.id + "/tests", "exec")
        assert p.signature.startswith(f"def {p.entry_point}(")
        assert isinstance(p.to_task(), Task)
    he = {p.id: p for p in bank}["humaneval/0"]
    assert he.tests.entry_point == "has_close_elements" and "def check(candidate)" in he.tests.code
    assert he.reference.startswith(he.instruction.strip())
    mb = {p.id: p for p in bank}["mbpp/2"]
    assert mb.instruction == "Write a function to find the shared elements from the given two lists."
    assert mb.tests.code.count("assert ") == 3


def test_mbpp_splits_follow_the_task_ids():
    assert [mbpp_split(i) for i in (1, 10, 11, 510, 511, 600, 601, 974)] == [
        "prompt", "prompt", "test", "test", "validation", "validation", "train", "train"]
    assert (mbpp_split("Mbpp/17"), mbpp_split("mbpp/975"), mbpp_split("humaneval/17"), mbpp_split("x")) == (
        "test", None, None, None)
    full = {p.id: p for p in load_mbpp_full()}
    # full MBPP's Windows line ends are read as plain ones; its setup code goes before the asserts
    assert "\r" not in full["mbpp/1"].reference and full["mbpp/1"].entry_point == "min_cost"
    with_setup = next(p for p in full.values() if "root = Node(1)" in p.tests.code)
    assert with_setup.tests.code.index("root = Node(1)") < with_setup.tests.code.index("assert")


def test_matching_finds_quoted_paraphrased_and_no_problem():
    bank = load_bank()
    index = ProblemIndex(bank)
    wrong = [p.id for p in bank
             if (m := index.match(f"Solve this.\n{p.instruction}\nUse the name {p.entry_point}.")) is None
             or m.instruction != p.instruction]
    assert wrong == []
    # A paraphrase that keeps most distinctive words and the entry point still matches.
    found = index.match("Please find the shared elements of two given lists: similar_elements")
    assert found is not None and found.id == "mbpp/2"
    assert index.match("Write a poem about autumn leaves and the sea.") is None


def test_plans_have_two_to_eight_steps_and_styles_differ():
    for p in load_bank()[::7]:
        plans = {plan_of(p.reference, p.entry_point, s)[0] for s in range(STYLES)}
        assert len(plans) == STYLES
        assert all(2 <= len(steps) <= 8 for steps in plans)


def test_module_source_brings_its_imports():
    code = "import math\nimport re\n\ndef helper(x):\n    return math.sqrt(x)\n\ndef main(x):\n    return helper(x)\n"
    assert module_source(code, "helper") == "import math\n\n\ndef helper(x):\n    return math.sqrt(x)\n"
    assert module_source(code, "missing") is None


def test_a_quoted_task_stub_is_not_a_solution():
    stub = '```python\ndef f(x):\n    """Return x doubled."""\n```'
    assert last_python_block(stub) is None
    block = last_python_block(stub + "\n```python\ndef f(x):\n    return 2 * x\n```")
    assert block is not None and block.startswith("def f(x)")


def test_fit_follows_the_schema():
    schema = {
        "type": "object", "additionalProperties": False, "required": ["plan", "count", "mode", "note"],
        "properties": {
            "plan": {"$ref": "#/$defs/Plan"}, "count": {"type": "integer"}, "mode": {"enum": ["a", "b"]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "opt": {"type": "string"},
        },
        "$defs": {"Plan": {"type": "object", "required": ["steps"],
                           "properties": {"steps": {"type": "array", "items": {"type": "string"}, "minItems": 1}}}},
    }
    assert fit({"plan": {"steps": ["x"], "extra": 1}, "junk": 2}, schema) == {
        "plan": {"steps": ["x"]}, "count": 0, "mode": "a", "note": None}
    assert fit({"plan": {}, "count": "3", "note": "n"}, schema)["plan"] == {"steps": [""]}
    assert fit({"tests": ["a", "b"]}, {"type": "object", "properties": {"tests": {"type": "string"}}}) == {
        "tests": "a\nb"}


def test_planted_bugs_compile_differ_and_follow_the_key():
    code = load_bank()[0].reference
    a, b = plant_bug(code, "0|mbpp/2|0"), plant_bug(code, "0|mbpp/2|0")
    assert a == b and a is not None
    compile(a[0], "mutant", "exec")
    assert ast.dump(ast.parse(a[0])) != ast.dump(ast.parse(code))
    # The bench's generator reads the same ordered list.
    assert next(mutants("def f(a, b):\n    return a < b\n"))[1] == "compare_flip: < -> <= (line 2)"
