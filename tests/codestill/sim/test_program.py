"""Program tasks in the simulator (``codestill.sim._program``): the conceptor's program instruction, the
coder's script and the tester's stdin/stdout cases (read by the agents' own parser, over HTTP), and the
realistic teacher's flaws on them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from pydantic import SecretStr

from agents._answers import IOTestsAnswer
from agents._prompts import prompt, render
from agents.coder import draft
from agents.tester import write_tests
from codestill.config import LLMConfig
from codestill.data import BankProblem
from codestill.llm import aclose, make_chat_model
from codestill.records import write_jsonl
from codestill.schemas import Origin, Plan, Seed, Task
from codestill.sim import PROFILES
from codestill.sim import _teacher as teacher
from codestill.sim._program import IO_FLAWS, asks_program, flawed_cases, program_instruction, script
from codestill.sim._render import FLAW
from codestill.sim._roles import Ask, default_handlers

from .conftest import MODEL

HANDLERS = teacher.handlers(default_handlers())
CASES = (("[1, 2]\n3\n", "6\n"), ("[]\n0\n", "0\n"), ("[5]\n-1\n", "4\n"))
SPLIT = '''def split_pairs(items, size):
    """Split items into consecutive lists of size elements."""
    return [items[i:i + size] for i in range(0, len(items), size)]
'''


def program_task(p: BankProblem) -> Task:
    return Task(id=f"{p.id}~program", instruction=program_instruction(p, "easy"), origin=Origin(category="program"))


def run_script(code: str, stdin: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_conceptor_writes_a_program_instruction_for_the_category(serve, tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    write_jsonl(path, [Seed(id="demo:split_pairs", name="split_pairs", signature="def split_pairs(items, size)",
                            code=SPLIT, docstring="Split items into consecutive lists of size elements.")])
    client = openai.OpenAI(base_url=serve(knowledge=(str(path),)), api_key="sk-test", max_retries=0, timeout=30)
    concepts = "slicing, iteration, comprehensions, split pairs (domain)"
    written = {}
    for category in ("program", "function"):
        r = client.chat.completions.create(model=MODEL, response_format={"type": "json_object"}, messages=[
            {"role": "system", "content": prompt("conceptor")},
            {"role": "user", "content": render("conceptor_instruction_user", category=category, difficulty="easy",
                                               concepts=concepts)}])
        written[category] = json.loads(r.choices[0].message.content or "{}")["instruction"]
    text = written["program"]
    assert text.startswith("An easy program task.") and asks_program(text)
    assert "Write a Python function `split_pairs(items, size)`" in text  # the problem, quoted: how it is found again
    assert "one Python literal per line, in the order `items`, `size`" in text
    assert not asks_program(written["function"]) and written["function"].startswith("An easy function task.")


@pytest.mark.parametrize("pid", ["mbpp/2", "mbpp/17", "humaneval/0"])
def test_a_program_task_gets_a_script_and_cases_it_passes(serve, bank, pid) -> None:
    p = bank[pid]
    spec = f"openai:{MODEL}@{serve()}"
    task = program_task(p)

    async def ask() -> tuple:
        model = make_chat_model(spec, LLMConfig(api_key=SecretStr("sk-test"), max_retries=0, timeout_s=30.0))
        try:
            code = await draft(model, task, Plan(steps=("Read, call, print.",)))
            tests = await write_tests(model, task, code.value.code if code.value else None)
            return code, tests
        finally:
            await aclose(model)

    code, tests = asyncio.run(ask())
    assert code.value is not None and code.value.code == script(p.reference, p.entry_point)
    assert isinstance(tests.value, IOTestsAnswer), tests.error  # the sim's prose, read by the agents' parser
    cases = tests.value.to_cases()
    assert len(cases) >= 3 and len({c.input for c in cases}) == len(cases)
    for case in cases:
        assert run_script(code.value.code, case.input).strip() == case.output.strip(), (pid, case)


def _ask(p: BankProblem, choice: int, io: tuple = CASES) -> Ask:
    text = program_task(p).instruction
    return Ask(role="tester", problem=p, user_text=text, last_user=text, choice=choice, style=choice, seed=0,
               bug_rate=0.0, rates=PROFILES["realistic"], io_cases=io)


def test_each_realistic_io_flaw_is_what_its_label_claims(bank) -> None:
    p = bank["mbpp/2"]
    seen: dict[str, dict] = {}
    for choice in range(200):
        answer = HANDLERS["tester"](_ask(p, choice))
        seen.setdefault(answer.get(FLAW, "-"), answer)
    assert set(seen) == {"-", *IO_FLAWS}
    right = [(c["input"], c["output"]) for c in seen["-"]["cases"]]
    assert right == list(CASES)
    wrong = [(c["input"], c["output"]) for c in seen["wrong_output"]["cases"]]
    assert [i for i, _ in wrong] == [i for i, _ in CASES] and sum(a != b for a, b in zip(wrong, CASES, strict=True)) == 1
    assert len(seen["too_few"]["cases"]) == 1
    assert len({c["output"] for c in seen["same_output"]["cases"]}) == 1
    assert flawed_cases("too_few", CASES[:1], 0.5) is None and flawed_cases("wrong_output", (), 0.5) is None


def test_the_realistic_coder_plants_a_bug_in_a_program_and_repairs_it_right(bank) -> None:
    p = bank["mbpp/17"]
    text = program_task(p).instruction
    right = script(p.reference, p.entry_point)
    kinds = set()
    for choice in range(60):
        a = Ask(role="coder", problem=p, user_text=text, last_user=text, choice=choice, style=choice, seed=0,
                bug_rate=0.0, rates=PROFILES["realistic"])
        answer = HANDLERS["coder"](a)
        kinds.add(answer.get(FLAW, "-"))
        assert 'if __name__ == "__main__":' in answer["code"]
        assert (answer["code"] == right) == (FLAW not in answer)
        repair = Ask(**{**a.__dict__, "user_text": text + "\n\nstatus: failed\n", "last_user": text + "\n\nstatus: failed\n"})
        assert HANDLERS["coder"](repair)["code"] == right
    assert kinds == {"-", "planted_bug"}
