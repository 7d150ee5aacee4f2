"""The simulated tester's own tests (``codestill.sim._strong``): they pass on the reference in the
sandbox's harness (``LocalSandbox``: the same runner and verdicts as the Docker sandbox, without
Docker), catch bugs the task's examples miss, are deterministic, and never read EvalPlus's data."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from agents import TestsAnswer
from agents.tester import suites
from codestill.config import SandboxConfig
from codestill.data import BankProblem
from codestill.schemas import TestSuite
from codestill.sim import SimConfig, plant_bug
from codestill.sim import _strong as strong
from codestill.sim._strong import EXTRA_TESTS, HEADER, StrongTests, strong_tests, with_extra
from tools.sandbox import LocalSandbox

from .conftest import MODEL, messages

# Every shape of public test: plain ==, set(...) ==, math.isclose, truth / not, check(candidate) with
# ==, tuple(...) ==, abs(...) < eps, not candidate(...).
SAMPLE = ["mbpp/2", "mbpp/3", "mbpp/17", "mbpp/82", "mbpp/101", "mbpp/160", "mbpp/305", "mbpp/603", "mbpp/787",
          "humaneval/0", "humaneval/2", "humaneval/10", "humaneval/33", "humaneval/52", "humaneval/109",
          "humaneval/130", "humaneval/151"]
# A planted bug (seed 1, choice 0) that passes the task's three asserts and fails the tester's.
SLIPPED = "mbpp/20"


def make_problem(reference: str, tests: str, entry: str = "f", pid: str = "mbpp/99999") -> BankProblem:
    return BankProblem(id=pid, source="mbpp", instruction="x", entry_point=entry, signature=f"def {entry}(x)",
                       reference=reference, tests=TestSuite(code=tests))


def ask_tester(client, p: BankProblem) -> TestsAnswer:
    r = client.chat.completions.create(model=MODEL, messages=messages("tester", p),
                                       response_format={"type": "json_object"})
    return TestsAnswer(**json.loads(r.choices[0].message.content))


def run_all(jobs: list[tuple[str, TestSuite]]) -> list:
    async def go() -> list:
        async with LocalSandbox(SandboxConfig(pool_size=2)) as sandbox:
            return list(await asyncio.gather(*(sandbox.run(code, suite) for code, suite in jobs)))

    return asyncio.run(go())


def test_the_extra_tests_pass_on_the_reference_in_the_sandbox(client, bank):
    answers = {pid: ask_tester(client, bank[pid]) for pid in [*SAMPLE, SLIPPED]}
    for pid, answer in answers.items():
        assert HEADER in answer.tests, pid
        assert 1 <= answer.tests.split(HEADER)[1].count("\nassert ") <= EXTRA_TESTS, pid
    jobs = [(bank[pid].reference, suites(bank[pid].to_task(), answers[pid])[0]) for pid in SAMPLE]
    planted = plant_bug(bank[SLIPPED].reference, f"1|{SLIPPED}|0|mutation")
    assert planted is not None
    bug, _ = planted
    task = bank[SLIPPED].to_task()
    assert task.tests is not None
    jobs += [(bug, TestSuite(code=task.tests.code)), (bug, suites(task, answers[SLIPPED])[0])]
    *results, public, strict = run_all(jobs)
    for pid, result in zip(SAMPLE, results, strict=True):
        given, extra = answers[pid].tests.split(HEADER)
        shown = 1 if "def check(" in given else given.count("assert ")  # check(entry) is one test
        assert result.status == "passed", (pid, result.feedback())
        # suites() runs the written tests, then the task's own again; every extra assert ran
        assert len(result.tests) == 2 * shown + extra.count("\nassert "), pid
    assert public.status == "passed"  # the bug slips past the task's own asserts ...
    assert strict.status == "failed"  # ... not past the tester's


def test_variants_keep_the_wrapper_and_the_tolerance(bank):
    extra = strong_tests(bank["mbpp/2"], 0)  # set(similar_elements(...)) == set(...): order-blind
    assert all(line.startswith("assert set(similar_elements(") for line in extra.splitlines()[1:])
    extra = strong_tests(bank["mbpp/82"], 0)  # math.isclose(volume_sphere(10), ..., rel_tol=0.001)
    assert "import math" in extra and "rel_tol=0.001, abs_tol=1e-06)" in extra
    extra = strong_tests(bank["humaneval/0"], 0)  # candidate(...) inside check(): the entry point, at top level
    assert extra.count("\nassert has_close_elements(") >= 5 and "candidate" not in extra
    assert with_extra("a\n", "") == "a\n" and with_extra("a\n", "b\n") == "a\n\n\nb\n"


def test_the_tests_are_deterministic_and_keyed_on_the_seed(bank):
    p = bank["mbpp/17"]
    assert strong_tests(p, 0) == strong_tests(p, 0)
    assert {strong_tests(p, s) for s in range(4)} != {strong_tests(p, 0)}


def test_loops_raises_and_odd_values_of_the_reference_are_left_out():
    reference = ("import math\n"
                 "def f(n):\n"
                 "    if n == 0:\n"
                 "        while True:\n"
                 "            pass\n"
                 "    if n < 0:\n"
                 "        raise ValueError('negative')\n"
                 "    if n == 1:\n"
                 "        return [float(n)]\n"  # floats in a list: compared exactly, as the examples are
                 "    if n == 5:\n"
                 "        return object()\n"  # not plain data
                 "    if n == 7:\n"
                 "        return list({'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'})\n"  # hash-order dependent
                 "    if n == 3:\n"
                 "        return math.pi\n"
                 "    return n * 2\n")
    p = make_problem(reference, "assert f(6) == 12\nassert f(2) == 4\nassert f(4) == 8\n")
    start = time.monotonic()
    extra = strong_tests(p, 0)
    assert time.monotonic() - start < 20
    lines = extra.splitlines()
    assert lines[0] == HEADER and "import math" in lines
    asserts = [line for line in lines if line.startswith("assert ")]
    assert "assert math.isclose(f(3), 3.141592653589793, rel_tol=1e-06, abs_tol=1e-06)" in asserts
    assert "assert f(1) == [1.0]" in asserts
    for n in (0, -1, -2, -4, -6, 5, 7):
        assert not any(a.startswith((f"assert f({n}) ", f"assert math.isclose(f({n}),")) for a in asserts), n
    assert "assert f(6) == 12" not in asserts  # a public test is not repeated
    namespace: dict = {}
    exec(reference, namespace)
    exec(extra, namespace)  # every kept test holds for the reference


def test_no_examples_no_extra_tests():
    assert strong_tests(make_problem("def f(x):\n    return x\n", "assert True\n"), 0) == ""
    assert strong_tests(make_problem("def f(x):\n    return x\n", "x = 3\nassert f(x) == 3\n"), 0) == ""
    assert strong_tests(make_problem("def f(x):\n    raise ValueError\n", "assert f(3) == 3\n"), 0) == ""
    assert strong_tests(make_problem("syntax error(", "assert f(3) == 3\n"), 0) == ""


def test_the_tester_never_reads_evalplus(bank, monkeypatch):
    import codestill.data
    import codestill.data._evalplus as evalplus

    def refuse(*args, **kwargs):
        raise AssertionError("the tester read EvalPlus's data")

    for module in (codestill.data, evalplus, strong):
        for name in ("load_evalplus", "_raw", "evalplus_digest", "mbpp_arguments"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)
    assert strong_tests(bank["mbpp/3"], 5).count("\nassert ") >= 3
    assert not [name for name in vars(strong) if "evalplus" in name.lower()]


def test_the_cache_computes_each_problem_once_under_concurrency(bank, monkeypatch):
    calls: list[str] = []

    def slow(p, seed):
        calls.append(p.id)
        time.sleep(0.2)
        return f"# {p.id} {seed}\n"

    monkeypatch.setattr(strong, "strong_tests", slow)
    cache = StrongTests(seed=3)
    got: list[str] = []
    threads = [threading.Thread(target=lambda pid=pid: got.append(cache.get(bank[pid])))
               for pid in ["mbpp/2", "mbpp/3"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == ["mbpp/2", "mbpp/3"] and len(got) == 8
    assert cache.cached("mbpp/2") == "# mbpp/2 3\n" and cache.cached("mbpp/4") is None


def test_the_flag_round_trips():
    assert "--no-strong-tests" in SimConfig(strong_tests=False).to_flags()
    assert "--no-strong-tests" not in SimConfig().to_flags()


@pytest.mark.parametrize("pid", ["mbpp/3", "humaneval/0"])
def test_concurrent_tester_requests_get_the_same_tests(serve, bank, pid):
    import openai

    client = openai.OpenAI(base_url=serve(seed=11), api_key="sk-test", max_retries=0, timeout=60)

    async def burst() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=serve(seed=11), api_key="sk-test", max_retries=0, timeout=60)
        rs = await asyncio.gather(*(aclient.chat.completions.create(
            model=MODEL, messages=messages(role, bank[pid]), response_format={"type": "json_object"})
            for role in ("tester", "planner", "tester", "tester")))
        return [r.choices[0].message.content or "" for r in rs]

    first = asyncio.run(burst())
    assert first[0] == first[2] == first[3]
    assert ask_tester(client, bank[pid]).tests == json.loads(first[0])["tests"]


def test_the_disk_cache_keeps_the_tests_between_servers_and_keys_them(bank, tmp_path, monkeypatch):
    made: list[tuple[str, int]] = []
    real = strong.strong_tests

    def counted(p, seed):
        made.append((p.id, seed))
        return real(p, seed)

    monkeypatch.setattr(strong, "strong_tests", counted)
    first = StrongTests(seed=3, cache_dir=tmp_path).get(bank["mbpp/3"])
    assert HEADER in first and made == [("mbpp/3", 3)]
    assert [p.name for p in tmp_path.rglob("*") if p.suffix == ".tmp"] == []  # no half-written entry
    # A second cache (another server) reads it back instead of running the reference again.
    assert StrongTests(seed=3, cache_dir=tmp_path).get(bank["mbpp/3"]) == first and len(made) == 1
    # Another seed, or a changed reference, is another key.
    StrongTests(seed=4, cache_dir=tmp_path).get(bank["mbpp/3"])
    changed = bank["mbpp/3"].model_copy(update={"reference": bank["mbpp/3"].reference + "\n# changed\n"})
    StrongTests(seed=3, cache_dir=tmp_path).get(changed)
    assert made[1:] == [("mbpp/3", 4), ("mbpp/3", 3)]
    # An unreadable entry is worked out again, and rewritten whole.
    for f in tmp_path.rglob("*.json"):
        f.write_text('{"tests": ', encoding="utf-8")
    assert StrongTests(seed=3, cache_dir=tmp_path).get(bank["mbpp/3"]) == first and len(made) == 4


def test_a_warmed_cache_serves_the_same_tests_as_working_them_out(serve, bank, tmp_path):
    from codestill.sim import warm_tester

    cache = tmp_path / "tester-cache"
    assert warm_tester(SimConfig(seed=11, cache_dir=str(cache)), ["mbpp/3", "humaneval/0", "nope/1"]) == 2
    assert len(list(cache.rglob("*.json"))) == 2
    cold = openai_client(serve(seed=11))
    warm = openai_client(serve(seed=11, cache_dir=str(cache)))
    for pid in ("mbpp/3", "humaneval/0"):
        assert ask_tester(warm, bank[pid]).tests == ask_tester(cold, bank[pid]).tests
    with pytest.raises(ValueError, match="cache_dir"):
        warm_tester(SimConfig(seed=11), ["mbpp/3"])
    assert SimConfig(cache_dir="x").to_flags()[-2:] == ["--cache-dir", "x"]


def openai_client(base_url: str):
    import openai

    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=60)
