"""Host-side pieces of the sandbox, without Docker: test splitting and verdicts."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from codestill.schemas import Limits
from tools.sandbox._owner import owner_is_gone, owner_label
from tools.sandbox._tests import InvalidTests, named_modules, pinned_names, split_asserts, suite_words
from tools.sandbox._verdict import build_result, tainted


def test_each_top_level_assert_is_a_test_and_the_rest_is_setup():
    units = split_asserts("import math\nX = 2\nassert f(X) == 4\nassert math.isclose(g(), 0.5)\n")
    assert [(u.name, u.is_test) for u in units] == [
        ("import math", False), ("X = 2", False), ("assert f(X) == 4", True),
        ("assert math.isclose(g(), 0.5)", True)]


def test_comparisons_inside_asserts_go_through_the_trusted_comparator():
    [unit] = split_asserts("assert 0 <= f(x) < 10 and f(1) != 2")
    assert unit.code == "assert _cs_cmp(('<=', '<'), 0, f(x), 10) and _cs_cmp(('!=',), f(1), 2)"
    [setup, _test] = split_asserts("y = a == b\nassert y")
    assert setup.code == "y = a == b"  # outside asserts nothing is rewritten


def test_humaneval_check_gets_called_with_the_entry_point():
    units = split_asserts("def check(candidate):\n    assert candidate(1) == 2\n", entry_point="inc")
    assert units[-1].name == "check(inc)" and units[-1].is_test
    assert "_cs_cmp" in units[0].code


@pytest.mark.parametrize("code", ["assert f( ==", "x = 1\n", ""])
def test_test_code_without_tests_or_syntax_is_refused(code):
    with pytest.raises(InvalidTests):
        split_asserts(code)


def _raw(report: str, **extra) -> dict:
    return {"report": report, "exit_code": 0, "signal": None, "cpu_s": 0.01, "wall_s": 0.02,
            "stopped_by": None, "oom": False, "leftover_processes": 0, "pids_after": 1, **extra}


def _report(nonce: str, outcomes: list[str]) -> str:
    import json

    lines = [{"kind": "load", "ok": True}]
    lines += [{"kind": "test", "i": i, "outcome": o, "message": ""} for i, o in enumerate(outcomes)]
    lines += [{"kind": "done", "n": len(outcomes)}]
    return "\n".join(json.dumps({**r, "nonce": nonce}) for r in lines) + "\n"


UNITS = split_asserts("assert f() == 1\nassert f() != 2")


def test_a_complete_report_with_the_nonce_passes():
    result = build_result(_raw(_report("n1", ["passed", "passed"])), UNITS, "n1", Limits(), "r")
    assert result.status == "passed" and [t.outcome for t in result.tests] == ["passed", "passed"]


def test_a_report_with_another_nonce_is_void():
    result = build_result(_raw(_report("forged", ["passed", "passed"])), UNITS, "n1", Limits(), "r")
    assert result.status == "error"


def test_a_report_that_stops_early_is_not_a_pass():
    text = "".join(_report("n1", ["passed", "passed"]).splitlines(keepends=True)[:2])
    result = build_result(_raw(text), UNITS, "n1", Limits(), "r")
    assert result.status == "error"
    assert [t.outcome for t in result.tests] == ["passed", "not_run"]


def test_a_report_counting_fewer_tests_than_the_host_is_not_a_pass():
    result = build_result(_raw(_report("n1", ["passed"])), UNITS, "n1", Limits(), "r")
    assert result.status == "error"


def test_sigkill_at_the_cpu_limit_is_a_timeout_and_taints():
    raw = _raw("", signal=int(signal.SIGKILL), cpu_s=2.0, exit_code=None)
    result = build_result(raw, UNITS, "n1", Limits(cpu_s=2.0), "r")
    assert (result.status, result.message) == ("timeout", "time limit exceeded: CPU 2 s")
    assert tainted(raw)
    assert not tainted(_raw(_report("n1", ["passed", "passed"])))


@pytest.mark.parametrize(("cpu_s", "message"), [
    (1.56, "time limit exceeded: CPU 1 s"),  # ignored SIGXCPU; the wall deadline beat the hard kill
    (0.01, "time limit exceeded: wall clock 4 s (CPU 0.01 s)"),  # asleep: the wall clock is the cause
])
def test_a_wall_stop_names_the_cpu_limit_only_when_the_program_spent_it(cpu_s, message):
    raw = _raw("", stopped_by="wall", signal=int(signal.SIGKILL), cpu_s=cpu_s, exit_code=None)
    result = build_result(raw, UNITS, "n1", Limits(cpu_s=1.0), "r")
    assert (result.status, result.message) == ("timeout", message)


def test_the_builtins_the_tests_use_are_pinned_but_never_the_entry_point():
    program = b"len = lambda x: 3\ndef sum(a, b):\n    return a + b\ndef f():\n    return [1]\n"
    # f is what the tests test, so the program's `sum` and `len` do not answer for the builtins.
    assert pinned_names(program, suite_words("assert len(f()) == sum([1], 0)"), None) == ["len", "sum"]
    # MBPP 126: the entry point is named `sum`; it stays the program's.
    assert pinned_names(b"def sum(a, b):\n    return a + b\n", suite_words("assert sum(1, 2) == 3"), None) == []
    assert pinned_names(program, suite_words("assert sum(1, 2) == 3 and len([]) == 0"), "sum") == ["len"]
    assert pinned_names(program, suite_words("assert f() == [1]"), None) == []


def test_an_owner_is_gone_only_when_this_machine_can_tell():
    dead = subprocess.Popen(["true"])
    dead.wait()
    host, boot, pid, start = owner_label().split("/")
    assert int(pid) == os.getpid() and start
    assert not owner_is_gone(owner_label())
    assert owner_is_gone(f"{host}/{boot}/{dead.pid}/{start}")
    assert owner_is_gone(f"{host}/{boot}/{os.getpid()}/{int(start) + 1}")  # a reused pid: another process
    assert owner_is_gone(f"{host}/another-boot/{os.getpid()}/{start}")
    assert not owner_is_gone(f"another-host/{boot}/{dead.pid}/{start}")  # a shared engine's other clients
    assert not owner_is_gone("")  # containers of older versions: not ours to judge


def test_the_modules_the_tests_name_are_the_ones_watched():
    assert named_modules(suite_words("import math\nfrom collections import Counter\nassert f(re_x) == 1")) == [
        "collections", "math"]
    assert named_modules(suite_words("assert f(1) == 2")) == []
