"""Which problems an evaluation scores (splits), how excluded problems count, and what the report says."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from codestill.data import load_mbpp
from codestill.errors import ConfigError
from training._bench import load_problems
from training._evalrun import SampleRecord
from training._report import dataset_text, problem_rows, render, summary_counts
from training.evaluate import EvalConfig, EvalSummary, eval_config


def _number(problem_id: str) -> int:
    return int(problem_id.rsplit("/", 1)[1])


def test_mbpp_scores_its_test_split_by_default(tmp_path):
    config = EvalConfig(model="m", bench="mbpp", out=tmp_path)
    assert config.split == "test"  # resolved on validation, so config.json records it
    problems = load_problems("mbpp", split=config.split)
    expected = [p.id for p in load_mbpp() if 11 <= _number(p.id) <= 510]
    assert [p.id for p in problems] == expected and len(expected) == 257
    assert load_problems("mbpp") == problems  # the library's default is the benchmark's too
    assert len(load_problems("mbpp", split="all")) == 427
    assert {_number(p.id) for p in load_problems("mbpp", split="train")} <= set(range(601, 975))


def test_mbpp_plus_and_humaneval_score_everything_unless_told(tmp_path):
    assert EvalConfig(model="m", bench="mbpp+", out=tmp_path).split == "all"
    assert len(load_problems("mbpp+")) == 378
    test = load_problems("mbpp+", split="test")
    assert len(test) == 224 and all(11 <= _number(p.id) <= 510 for p in test)
    assert EvalConfig(model="m", bench="humaneval+", out=tmp_path, split="all").split == "all"
    with pytest.raises(ConfigError, match=r"humaneval has no test split .*drop --split or use --split all"):
        eval_config({"model": "m", "bench": "humaneval", "out": tmp_path, "split": "test"})
    with pytest.raises(ConfigError, match=r"split"):
        eval_config({"model": "m", "bench": "mbpp", "out": tmp_path, "split": "dev"})


def test_the_split_filters_before_ids_and_limit():
    assert [p.id for p in load_problems("mbpp", ["12", "mbpp/11"], limit=1)] == ["mbpp/12"]
    assert [p.id for p in load_problems("mbpp", limit=2)] == ["mbpp/11", "mbpp/12"]
    with pytest.raises(ConfigError, match=r"^2, mbpp/602 are not in mbpp's test split \(task ids 11-510\)"):
        load_problems("mbpp", ["2", "11", "mbpp/602"])
    assert [p.id for p in load_problems("mbpp", ["2"], split="all")] == ["mbpp/2"]
    with pytest.raises(ConfigError, match=r"mbpp has no problem 5000"):
        load_problems("mbpp", ["5000"])


def _sample(problem: str, passed: bool, index: int = 0) -> SampleRecord:
    return SampleRecord(problem=problem, index=index, passed=passed, status="passed" if passed else "failed",
                        code="x = 1\n")


def _summary(rows: list[dict], **extra) -> EvalSummary:
    return EvalSummary(model="m", bench="mbpp+", split="all", dataset="MBPP+", n=1, k=(1,), temperature=0.0,
                       plan_samples=0, protocol="p", out=Path("ev"), **summary_counts(rows, (1,)), **extra)


def test_excluded_problems_count_as_failed_and_incomplete_ones_not_at_all():
    problems = load_problems("mbpp", limit=4)
    ids = [p.id for p in problems]
    samples = {(ids[0], 0): _sample(ids[0], True), (ids[1], 0): _sample(ids[1], False)}  # ids[3]: missing
    rows = problem_rows(problems, samples, 1, (1,), {ids[2]: "the reference runs out of memory"})
    counts = summary_counts(rows, (1,))
    assert counts["pass_at_k"] == {"pass@1": pytest.approx(1 / 3)}  # 1 passed of 2 scored + 1 excluded
    assert counts["pass_at_k_scored"] == {"pass@1": 0.5}
    assert counts["problems"] == 2 and counts["incomplete"] == [ids[3]]
    console = Console(record=True, width=200)
    render(_summary(rows, excluded={ids[2]: "the reference runs out of memory"}), console)
    assert "pass@1 33.3% (50.0% of the 2 scored; 1 excluded count as failed)" in console.export_text()


def test_the_report_names_the_split_and_warns_about_training_overlap():
    assert dataset_text("mbpp", "test", 257, 257) == (
        "MBPP, sanitized (Austin et al. 2021), test split (task ids 11-510): 257 problems")
    assert dataset_text("mbpp+", "all", 378, 16).endswith("all splits: 16 of its 378 problems")
    assert dataset_text("humaneval", "all", 164, 164) == "HumanEval (Chen et al. 2021): 164 problems"
    rows = [{"problem": f"mbpp/{i}", "n": 1, "c": 0, "passed": [False], "status": ["failed"], "pass@1": 0.0}
            for i in range(11, 21)]
    console = Console(record=True, width=400)
    render(_summary(rows, training_data="run/training_data.json",
                    training_overlap=[f"mbpp/{i}" for i in range(11, 20)]), console)
    text = console.export_text()
    assert ("warning: 9 of the 10 problems evaluated are in this model's training data (mbpp/11, mbpp/12, mbpp/13, "
            "mbpp/14, mbpp/15, mbpp/16, mbpp/17, mbpp/18, ...; read from run/training_data.json)") in text
    assert "--split test for MBPP" in text
    quiet = Console(record=True, width=400)
    render(_summary(rows), quiet)
    assert "warning" not in quiet.export_text() and "excluded" not in quiet.export_text().split("score:")[0]
