"""The simulator's instruction makers over HTTP: seeds it knows (``--knowledge``), the conceptor, the
evolver with its failed evolutions, and the judge; and the tests it works out for a seed by running it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import openai
import pytest

from agents import conceptor
from agents._prompts import prompt, render
from codestill.records import write_jsonl
from codestill.schemas import Seed
from codestill.sim._seeds import guessed_calls, seed_problem, seed_tests
from tests.codestill.sim.conftest import MODEL

QUOTE = '''import re

def quote(s):
    """Return a shell-escaped version of the string *s*.

    >>> quote("it's")
    "'it'\\"'\\"'s'"
    """
    if not s:
        return "''"
    if re.search(r'[^\\w@%+=:,./-]', s, re.ASCII) is None:
        return s
    return "'" + s.replace("'", "'\\"'\\"'") + "'"
'''
SPLIT = '''def split_pairs(items, size):
    """Split items into consecutive lists of size elements."""
    return [items[i:i + size] for i in range(0, len(items), size)]
'''
SEEDS = [Seed(id="demo:shlex.quote", name="quote", signature="def quote(s)", code=QUOTE,
              docstring="Return a shell-escaped version of the string *s*.\n\n>>> quote(\"it's\")"),
         Seed(id="demo:lists.split_pairs", name="split_pairs", signature="def split_pairs(items, size)", code=SPLIT,
              docstring="Split items into consecutive lists of size elements.")]


@pytest.fixture(scope="module")
def sim(serve, tmp_path_factory) -> openai.OpenAI:
    path = tmp_path_factory.mktemp("knowledge") / "seeds.jsonl"
    write_jsonl(path, SEEDS)
    url = serve(knowledge=(str(path),), evol_fail_rate=0.5)
    return openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=30)


def _ask(client: openai.OpenAI, role: str, user: str, n: int = 1) -> list[dict]:
    r = client.chat.completions.create(model=MODEL, n=n, messages=[
        {"role": "system", "content": prompt(role)}, {"role": "user", "content": user}],
        response_format={"type": "json_object"})
    return [json.loads(c.message.content or "{}") for c in r.choices]


def test_a_seed_gets_tests_from_its_docstring_and_guessed_arguments() -> None:
    problem = seed_problem(SEEDS[0])
    calls = guessed_calls(QUOTE, "quote", SEEDS[0].docstring, "k")
    assert calls[0] == 'quote("it\'s")'  # the docstring's example comes first
    assert all(c.startswith("quote('") or c.startswith('quote("') for c in calls)  # `s` takes strings
    tests = seed_tests(problem, 0)
    namespace: dict = {}
    exec(QUOTE + "\n" + tests, namespace)  # the asserts hold for the seed itself
    assert tests.count("assert ") >= 3
    assert "assert quote('') == \"''\"" in tests


def test_a_seed_with_unguessable_arguments_gets_no_tests() -> None:
    code = 'def sink(handler):\n    """Call handler."""\n    return handler.handle()\n'
    seed = Seed(id="x:sink", name="sink", signature="def sink(handler)", code=code)
    assert seed_tests(seed_problem(seed), 0) == ""


def test_concepts_then_an_instruction_for_the_known_seed(sim) -> None:
    [concepts] = _ask(sim, "conceptor", render("conceptor_concepts_user", snippet=f"```python\n{SPLIT}```"))
    assert "slicing" in concepts["concepts"] and "split pairs (domain)" in concepts["concepts"]
    user = render("conceptor_instruction_user", category="function", difficulty="easy",
                  concepts=", ".join(concepts["concepts"]))
    [written] = _ask(sim, "conceptor", user)
    assert "Write a Python function `split_pairs(items, size)`" in written["instruction"]
    assert written["instruction"].startswith("An easy function task.")


def test_the_request_is_read_after_the_examples_written_before_it(sim) -> None:
    shots = conceptor.shots()
    snippet = render("conceptor_concepts_user", snippet=f"```python\n{SPLIT}```")
    examples = [(render("conceptor_concepts_user", snippet=f"```python\n{s.snippet}```"),
                 {"concepts": list(s.concepts)}) for s in shots]
    [concepts] = _ask(sim, "conceptor", conceptor.with_examples(examples, snippet))
    assert "split pairs (domain)" in concepts["concepts"]
    examples = [(render("conceptor_instruction_user", category=s.category, difficulty=s.difficulty,
                        concepts=", ".join(s.concepts)), {"instruction": s.instruction}) for s in shots]
    user = render("conceptor_instruction_user", category="function", difficulty="easy",
                  concepts=", ".join(concepts["concepts"]))
    [written] = _ask(sim, "conceptor", conceptor.with_examples(examples, user))
    assert written["instruction"].startswith("An easy function task.")
    assert "`split_pairs(items, size)`" in written["instruction"]


def test_concepts_it_knows_no_seed_for_get_an_honest_instruction(sim) -> None:
    user = render("conceptor_instruction_user", category="class", difficulty="hard",
                  concepts="graph colouring, backtracking")
    [written] = _ask(sim, "conceptor", user)
    assert "cannot solve" in written["instruction"]


def test_the_evolver_extends_the_task_or_fails_in_each_way_real_teachers_do(sim) -> None:
    parent = seed_problem(SEEDS[1]).instruction
    outcomes: Counter[str] = Counter()
    for heuristic in ("constraints", "specific", "reasoning", "misdirection", "complexity"):
        user = render("evolver_user", method=prompt(f"evol_{heuristic}").strip(), instruction=parent)
        for reply in _ask(sim, "evolver", user, n=8):
            text = reply["instruction"]
            if text.startswith(parent) and len(text) > len(parent) + 20:
                outcomes["evolved"] += 1
                if heuristic == "misdirection":
                    assert "erroneous code" in text and "```\n" in text and "```python" not in text
                if heuristic == "reasoning":
                    assert "1. " in text
            elif text == parent:
                outcomes["unchanged"] += 1
            elif text.startswith("#Rewritten Prompt#"):
                outcomes["copied"] += 1
            elif text.startswith("I'm sorry"):
                outcomes["refusal"] += 1
            else:
                assert "essay" in text
                outcomes["lost"] += 1
    assert set(outcomes) == {"evolved", "unchanged", "copied", "refusal", "lost"}, outcomes


def test_the_judge_knows_a_task_from_an_essay(sim) -> None:
    task = seed_problem(SEEDS[0]).instruction + "\n\nDo not print anything."
    [yes] = _ask(sim, "evolver", render("evolver_judge_user", instruction=task))
    [no] = _ask(sim, "evolver", render("evolver_judge_user",
                                       instruction="Explain in a short essay why quoting matters in design."))
    assert yes["solvable"] is True and no["solvable"] is False


def test_the_tester_gives_a_known_seed_its_worked_out_tests(sim) -> None:
    instruction = seed_problem(SEEDS[1]).instruction + "\n\nThe function must not modify its arguments."
    [tests] = _ask(sim, "tester", f"Write tests for this task.\n\n{instruction}")
    assert tests["entry_point"] == "split_pairs"
    assert "assert split_pairs(" in tests["tests"]


def test_a_missing_knowledge_file_is_one_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    codestill = Path(sys.executable).with_name("codestill")
    done = subprocess.run([str(codestill), "sim", "serve", "--port", "0", "--knowledge",
                           str(tmp_path / "nope.jsonl")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no knowledge file" in done.stderr and "Traceback" not in done.stderr
