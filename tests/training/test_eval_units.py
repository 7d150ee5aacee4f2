"""The evaluation's parts that need neither the sandbox nor a model: pass@k, settings, problems,
prompts, the EvalPlus comparison, plan choice and the output directory."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from codestill.data import evalplus_digest, load_evalplus
from codestill.errors import ConfigError
from codestill.schemas import ExecResult, ExecStatus, TestResult
from training import _harness
from training._bench import load_problems
from training._evalrun import SampleRecord, SampleWriter, check_same_run, read_samples
from training._passk import mean_pass_at_k, pass_at_k
from training._plansample import choose
from training._prompts import code_request, plan_request, solution
from training.evaluate import EvalConfig, eval_config, redact


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 0, 1, 0.0),
    (10, 10, 1, 1.0),
    (10, 3, 1, 0.3),  # pass@1 is the share of passing samples
    (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (10, 1, 5, 0.5),  # 1 - C(9,5)/C(10,5) = 1 - 126/252
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (10, 3, 8, 1.0),  # n - c < k: every draw of 8 holds a passing sample
    (1, 1, 1, 1.0),
])
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_stable_where_the_binomials_overflow_floats():
    exact = 1 - math.comb(190, 100) / math.comb(200, 100)
    assert pass_at_k(200, 10, 100) == pytest.approx(exact, rel=1e-12)
    # C(2000, 1000) is ~1e600: as floats the ratio would be inf/inf
    assert 0 < pass_at_k(2000, 1, 1000) == pytest.approx(0.5, rel=1e-12)


def test_the_benchmark_score_is_the_mean_over_problems_and_bad_counts_are_refused():
    assert mean_pass_at_k([(5, 2, ), (5, 0), (5, 5)], 2) == pytest.approx((0.7 + 0.0 + 1.0) / 3)
    assert mean_pass_at_k([], 1) == 0.0
    for n, c, k in ((3, 4, 1), (3, 1, 4), (3, 1, 0)):
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_config_fills_in_k_and_temperature_and_refuses_k_over_n(tmp_path):
    greedy = EvalConfig(model="openai:m@http://h/v1", bench="mbpp", out=tmp_path)
    assert greedy.ks == (1,) and greedy.sampling_temperature == 0.0
    sampled = EvalConfig(model="openai:m@http://h/v1", bench="mbpp", out=tmp_path, n=20)
    assert sampled.ks == (1, 10) and sampled.sampling_temperature == 0.8
    assert EvalConfig(model="m", bench="mbpp", out=tmp_path, n=10, k=(10, 1, 10)).ks == (1, 10)
    with pytest.raises(ConfigError, match=r"pass@10 needs at least 10 samples per problem but n=2"):
        eval_config({"model": "m", "bench": "mbpp", "out": tmp_path, "n": 2, "k": (1, 10)})
    with pytest.raises(ConfigError, match=r"unknown benchmark 'apps'; use one of: humaneval, humaneval\+"):
        eval_config({"model": "m", "bench": "apps", "out": tmp_path})


def test_problems_are_picked_by_id_in_any_form_and_unknown_ids_are_named():
    picked = load_problems("mbpp+", ["Mbpp/3", "2", "mbpp/3"])
    assert [p.id for p in picked] == ["mbpp/3", "mbpp/2"]
    assert picked[1].plus and len(picked[1].base_inputs) == 3 and len(picked[1].plus_inputs) == 108
    assert len(load_problems("humaneval", limit=4)) == 4
    with pytest.raises(ConfigError, match=r"mbpp has no problem humaneval/2, 1"):
        load_problems("mbpp", ["humaneval/2", "1"])


def test_the_public_test_is_the_first_assert_only():
    mbpp = load_problems("mbpp", ["2"], split="all")[0]
    assert mbpp.public is not None and mbpp.tests is not None
    assert mbpp.public.code.count("assert") == 1 and mbpp.tests.code.count("assert") == 3
    assert "assert" in mbpp.prompt and "similar_elements" in mbpp.prompt  # EvalPlus's MBPP prompt shows one test
    human = load_problems("humaneval+", ["0"])[0]
    assert human.public.entry_point == "has_close_elements" and human.public.code.count("assert") == 1


def test_a_reply_becomes_a_program():
    mbpp, human = load_problems("mbpp", ["2"], split="all")[0], load_problems("humaneval", ["2"])[0]
    reply = "Sure.\n```python\nprint('draft')\n```\nBetter:\n```python\ndef similar_elements(a, b):\n    return a\n```\n"
    assert solution(mbpp, reply, chat=True) == "def similar_elements(a, b):\n    return a\n"
    # A HumanEval answer without the function's def is its body, under the stub (as EvalPlus reads it).
    assert solution(human, "```python\n    return number % 1.0\n```", chat=True) == human.prompt + "    return number % 1.0\n"
    # A base model continues the stub and is cut at the Codex stop sequences.
    assert solution(human, "    return number % 1.0\n\ndef extra():\n    pass\n", chat=False) == (
        human.prompt + "    return number % 1.0\n")
    request = code_request(mbpp, chat=True, n=3, temperature=0.8, seed=1, plan="1. Intersect.")
    assert request.n == 3 and "Follow this plan:\n1. Intersect." in request.messages[0][1]
    assert "plan" in plan_request(mbpp, n=2, temperature=0.8, seed=1).messages[0][1]


def _judge(out, exp, atol=0.0, dataset="humaneval", entry="f", inp=()):
    try:
        _harness._cs_judge(out, exp, list(inp), atol, dataset, entry)
    except AssertionError:
        return False
    return True


def test_outputs_are_judged_with_evalplus_tolerance_and_types():
    assert _judge(0.1 + 0.2, 0.3)  # float outputs without an atol get 1e-6
    assert not _judge(0.3001, 0.3)
    assert _judge(1.0000005, 1.0, atol=1e-6) and not _judge(1.01, 1.0, atol=1e-6)
    assert _judge([1.0, 2.0 + 1e-9], [1.0, 2.0])
    assert not _judge([1, 2], (1, 2))  # a list is not the tuple the reference returns
    assert not _judge(1, 1.5, atol=1.0)  # within atol, but an int where a float is due
    assert _judge((3, 1), (1, 3), dataset="mbpp", entry="similar_elements")  # EvalPlus compares these as sets
    assert _judge(1.0, 0.0, atol=1e-6, entry="find_zero", inp=([-1, 1],))  # any root: poly(1) = 0
    assert not _judge(float("nan"), float("nan"))


def test_values_cross_to_the_sandbox_with_their_types():
    value = {"t": (1, (2, 3)), "s": {1, 2}, "c": 1 + 2j, "big": 10**40, "f": [float("inf")], "b": b"\x00"}
    assert _harness._cs_dec(_harness._cs_enc(value)) == value
    back = _harness._cs_dec(_harness._cs_enc(value))
    assert isinstance(back, dict) and type(back["t"]) is tuple


def _run(status: ExecStatus, passed: int, total: int = 1) -> ExecResult:
    tests = tuple(TestResult(name=f"t{i}", outcome="passed" if i < passed else "failed") for i in range(total))
    return ExecResult(run_id="r", status=status, tests=tests)


def test_plan_sampling_keeps_the_first_candidate_passing_the_public_test():
    assert choose([_run("failed", 0), _run("passed", 1), _run("passed", 1)]) == 1
    assert choose([_run("failed", 0, 2), _run("failed", 1, 2), None]) == 1  # else the one passing most
    assert choose([_run("error", 0), None]) == 0


def _record(problem: str, index: int) -> SampleRecord:
    return SampleRecord(problem=problem, index=index, passed=True, status="passed", code="x = 1\n")


def test_a_torn_last_line_is_ignored_and_closed_before_the_next(tmp_path):
    path = tmp_path / "samples.jsonl"
    writer = SampleWriter(path)
    writer.write(_record("mbpp/2", 0))
    writer.close()
    with path.open("a") as f:
        f.write('{"problem": "mbpp/2", "ind')  # an interrupted run
    assert set(read_samples(tmp_path)) == {("mbpp/2", 0)}
    writer = SampleWriter(path)
    writer.write(_record("mbpp/2", 1))
    writer.close()
    assert set(read_samples(tmp_path)) == {("mbpp/2", 0), ("mbpp/2", 1)}


def test_an_output_directory_resumes_only_the_same_sampling(tmp_path):
    identity = {"model": "m", "bench": "mbpp", "temperature": 0.0}
    check_same_run(tmp_path / "new", identity)  # nothing there yet
    (tmp_path / "config.json").write_text('{"identity": {"model": "m", "bench": "mbpp", "temperature": 0.0}}')
    check_same_run(tmp_path, identity)
    with pytest.raises(ConfigError, match=r"sampled differently \(temperature 0.0 -> 0.8\)"):
        check_same_run(tmp_path, {**identity, "temperature": 0.8})
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an evaluation's output directory"):
        check_same_run(other, identity)


def test_credentials_in_a_model_url_are_not_recorded():
    assert redact("openai:m@https://user:sk-secret@host:8000/v1") == "openai:m@https://***@host:8000/v1"
    assert redact("openai:m@http://host:8000/v1") == "openai:m@http://host:8000/v1"
    assert redact(str(Path("/models/x"))) == "/models/x"


def test_a_huge_reference_output_is_found_too_big_without_encoding_it():
    assert _harness._cs_fits([(1, 2), {"a": "xyz"}], 100)
    assert not _harness._cs_fits("x" * 101, 100)
    huge = [tuple(range(77))] * 2_000_000  # Mbpp/255's size: encoding it would take GBs
    assert not _harness._cs_fits(huge, 1 << 16)
    assert len(_harness._cs_pack({"v": [(1, 2)]})) < 100


def test_the_shipped_evalplus_files_are_the_upstream_releases():
    """The SHA-256 sums NOTICE.md gives (EvalPlus's release files, byte for byte)."""
    assert evalplus_digest("humaneval+") == "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101"
    assert evalplus_digest("mbpp+") == "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63"
    human, mbpp = load_evalplus("humaneval+"), load_evalplus("mbpp+")
    assert (len(human), len(mbpp)) == (164, 378)
    assert sum(len(p.base_input) for p in human) == 1570 and sum(len(p.plus_input) for p in human) == 122683
    assert sum(len(p.plus_input) for p in mbpp) == 39841
    assert type(next(p for p in mbpp if p.id == "mbpp/2").base_input[0][0]) is tuple  # EvalPlus's own reading
