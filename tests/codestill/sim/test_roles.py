"""Each role's answer for an MBPP and a HumanEval problem, planted bugs, repairs, seeds."""

from __future__ import annotations

import ast
import json
import warnings

import openai
import pytest

from codestill.schemas import ExecResult, ExecStatus, TestResult
from codestill.sim import SCHEMA_MARKER
from codestill.structured import extract_code

from .conftest import MODEL, messages

PROBLEMS = ["mbpp/2", "humaneval/10"]  # humaneval/10 has two functions: a helper and the entry point


def ask(client, role, problem, extra="", **kwargs) -> dict:
    """The role's answer dict, asked for as JSON (the form agents parse most directly)."""
    r = client.chat.completions.create(model=MODEL, messages=messages(role, problem, extra),
                                       response_format={"type": "json_object"}, **kwargs)
    return json.loads(r.choices[0].message.content)


def functions(code: str) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(code)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]


def feedback(status: ExecStatus) -> str:
    tests = (TestResult(name="assert f(1) == 2", outcome="failed", message="assert 3 == 2"),
             TestResult(name="assert f(2) == 4", outcome="passed"))
    return ExecResult(run_id="r1", status=status, tests=tests if status != "error" else (),
                      message="NameError: name 'x' is not defined" if status == "error" else "").feedback()


@pytest.mark.parametrize("pid", PROBLEMS)
def test_planner_reads_the_reference_forward_and_given_code_backward(client, bank, pid):
    p = bank[pid]
    plan = ask(client, "planner", p)
    assert 2 <= len(plan["steps"]) <= 8 and plan["kind"] == "forward" and plan["rationale"]
    assert any(p.entry_point in step for step in plan["steps"])
    code = "def add_up(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    backward = ask(client, "planner", p, f"\nThe verified solution:\n```python\n{code}```")
    assert backward["kind"] == "backward" and any("add_up" in s for s in backward["steps"])
    assert any("xs" in s for s in backward["steps"])


@pytest.mark.parametrize("pid", PROBLEMS)
def test_decomposer_names_the_reference_functions(client, bank, pid):
    p = bank[pid]
    modules = ask(client, "decomposer", p)["modules"]
    assert [m["name"] for m in modules] == functions(p.reference)
    assert all(m["signature"].startswith(f"def {m['name']}(") and not m["signature"].endswith(":")
               and m["description"] for m in modules)


@pytest.mark.parametrize("pid", PROBLEMS)
def test_coder_writes_the_reference_or_one_module(client, bank, pid):
    p = bank[pid]
    answer = ask(client, "coder", p)
    assert answer["code"] == p.reference and answer["explanation"]
    compile(answer["code"], pid, "exec")
    first = functions(p.reference)[0]
    module = ask(client, "coder", p, f"\nWrite one module.\nmodule: {first}\n")["code"]
    assert functions(module) == [first]
    compile(module, pid, "exec")


@pytest.mark.parametrize("pid", PROBLEMS)
def test_tester_gives_the_bank_tests_and_more(client, serve, bank, pid):
    p = bank[pid]
    answer = ask(client, "tester", p)
    assert answer["entry_point"] == p.entry_point and answer["tests"].startswith(p.tests.code.rstrip("\n"))
    extra = answer["tests"][len(p.tests.code.rstrip("\n")):]
    assert 3 <= extra.count("\nassert ") <= 10 and f"{p.entry_point}(" in extra
    compile(answer["tests"], pid, "exec")
    weak = openai.OpenAI(base_url=serve(strong_tests=False), api_key="sk-test", max_retries=0, timeout=30)
    assert ask(weak, "tester", p) == {"tests": p.tests.code, "entry_point": p.entry_point}


@pytest.mark.parametrize("pid", PROBLEMS)
def test_critic_follows_the_last_status_line(client, bank, pid):
    p = bank[pid]
    failed = ask(client, "critic", p, "\n\nFirst run:\n" + feedback("passed") + "\n\nLatest run:\n" + feedback("failed"))
    assert failed["verdict"] == "repair" and failed["issues"] == ["assert f(1) == 2: failed: assert 3 == 2"]
    error = ask(client, "critic", p, "\n" + feedback("error"))
    assert error["verdict"] == "repair" and error["issues"] == ["NameError: name 'x' is not defined"]
    passed = ask(client, "critic", p, "\n" + feedback("failed") + "\n\nAfter the repair:\n" + feedback("passed"))
    assert passed == {"verdict": "accept", "issues": [], "suggestion": ""}
    nothing = ask(client, "critic", p)
    assert nothing["verdict"] == "repair" and "no test results" in nothing["issues"][0]


def test_unknown_tasks_and_roles_get_honest_answers(client):
    task = "Write a function `frobnicate_widgets` that turns widgets into gadgets, keeping their colour."
    msgs = lambda role: [{"role": "system", "content": f"You are the codestill {role}."},  # noqa: E731
                         {"role": "user", "content": task}]
    r = client.chat.completions.create(model=MODEL, messages=msgs("coder"), response_format={"type": "json_object"})
    code = json.loads(r.choices[0].message.content)["code"]
    assert functions(code) == ["frobnicate_widgets"] and "the simulator has no reference for this task" in code
    for role in ("evolver", "conceptor", "wizard"):
        r = client.chat.completions.create(model=MODEL, messages=msgs(role), response_format={"type": "json_object"})
        assert "not a language model" in json.loads(r.choices[0].message.content)["answer"]


def test_planted_bugs_compile_and_a_repair_gets_the_reference(serve, bank):
    client = openai.OpenAI(base_url=serve(bug_rate=1.0), api_key="sk-test", max_retries=0)
    for pid in PROBLEMS:
        p = bank[pid]
        buggy = ask(client, "coder", p)["code"]
        assert buggy != p.reference
        compile(buggy, pid, "exec")
        assert ast.dump(ast.parse(buggy)) != ast.dump(ast.parse(p.reference))
        for status in ("failed", "error", "timeout"):
            repair = ask(client, "coder", p, f"\nYour code:\n```python\n{buggy}\n```\n{feedback(status)}\nFix it.")
            assert repair["code"] == p.reference


def test_the_same_seed_gives_the_same_replies_and_another_seed_may_not(serve, bank):
    def replies(url: str) -> list[str]:
        client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
        out = []
        for pid in ("mbpp/2", "mbpp/3", "humaneval/3", "humaneval/12"):
            for role in ("planner", "coder"):
                r = client.chat.completions.create(model=MODEL, messages=messages(role, bank[pid]), n=2)
                out += [c.message.content for c in r.choices]
        return out

    first = replies(serve(seed=7, bug_rate=0.5))
    again = replies(serve(seed=7, bug_rate=0.5, retry_after_ms=201))  # another process, same seed
    assert first == again
    assert replies(serve(seed=8, bug_rate=0.5)) != first


def test_a_prompt_schema_shapes_prose_for_any_role(client, bank):
    schema = {"type": "object", "required": ["verdict"], "properties": {"verdict": {"type": "string"}}}
    extra = f"\n{feedback('failed')}\nReply with JSON that {SCHEMA_MARKER}\n```json\n{json.dumps(schema)}\n```"
    text = client.chat.completions.create(model=MODEL, messages=messages("critic", bank["mbpp/2"], extra)
                                          ).choices[0].message.content
    assert '"verdict"' in text and '"issues"' not in text and "repair" in text


@pytest.mark.parametrize("pid", PROBLEMS)
def test_a_plain_request_gets_the_reference_in_a_block_or_a_numbered_plan(client, bank, pid):
    """What `codestill eval` and students send: no codestill system line, no schema."""
    p = bank[pid]
    code = client.chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": f"Please provide a self-contained Python script:\n```\n{p.instruction}\n```"}])
    program = extract_code(code.choices[0].message.content or "")
    assert program is not None and program.strip() == p.reference.strip()
    plan = client.chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": f"Write a numbered, step-by-step plan for this problem.\n{p.instruction}"}])
    text = plan.choices[0].message.content or ""
    steps = text.split("\n\n", 1)[1].splitlines()
    assert len(steps) >= 2 and all(s.startswith(f"{i}. ") for i, s in enumerate(steps, 1))
    assert "```" not in text
    structured = client.chat.completions.create(model=MODEL, response_format={"type": "json_object"}, messages=[
        {"role": "user", "content": p.instruction}])
    assert "not a language model" in json.loads(structured.choices[0].message.content)["answer"]
