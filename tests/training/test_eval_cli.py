"""`codestill eval` through the installed command: a run, its resumption, and the errors a user can cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codestill.sim import SimConfig, serve_subprocess

CLI = str(Path(sys.executable).with_name("codestill"))


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with serve_subprocess(SimConfig(seed=2)) as url:
        yield f"openai:codestill-sim@{url}"


def _eval(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "eval", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_eval_runs_resumes_and_reports(tmp_path, sim):
    args = ("--model", sim, "--bench", "mbpp", "--limit", "3", "--n", "2", "--k", "1,2", "--out", "ev")
    first = _eval(tmp_path, *args, "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["pass_at_k"] == {"pass@1": 1.0, "pass@2": 1.0} and summary["generated"] == 6
    assert summary["temperature"] == 0.8 and "n=2 samples per problem" in summary["protocol"]
    out = tmp_path / "ev"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "results.jsonl", "samples.jsonl", "summary.json"]
    assert len((out / "results.jsonl").read_text().splitlines()) == 3
    again = _eval(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "pass@2" in again.stdout and "100.0%" in again.stdout and "6/6" in again.stdout
    assert "0 samples generated, 6 reused" in again.stdout and "unbiased estimator" in again.stdout


def _bad_cases(sim: str, tmp_path: Path) -> list[tuple[list[str], dict[str, str], str]]:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    return [
        (["--model", "gpt4", "--bench", "mbpp"], {}, "model spec 'gpt4' is not understood"),
        (["--model", sim, "--bench", "apps"], {}, "unknown benchmark 'apps'"),
        (["--model", sim, "--bench", "mbpp", "--n", "2", "--k", "1,10"], {}, "pass@10 needs at least 10 samples"),
        (["--model", "openai:codestill-sim@http://127.0.0.1:9/v1", "--bench", "mbpp"], {},
         "the server does not answer"),
        (["--model", str(not_a_model), "--bench", "mbpp"], {}, "not a model directory (no config.json)"),
        (["--model", sim, "--bench", "mbpp", "--limit", "1"], {"DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
         "No Docker engine answers"),
    ]


def test_bad_input_ends_in_one_line_and_writes_nothing(tmp_path, sim):
    for args, env, message in _bad_cases(sim, tmp_path):
        result = _eval(tmp_path, *args, "--out", "ev", env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "ev").exists(), args
