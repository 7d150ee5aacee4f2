"""`codestill instruct` and `codestill evolve` as a user runs them: against the simulator, with bad
input, with a model server that is not there, and with a dev command that stops the rounds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codestill.records import read_jsonl, write_jsonl
from codestill.schemas import Seed, Task
from codestill.sim import SimConfig, serve_subprocess
from codestill.sim._seeds import seed_instruction

CODESTILL = str(Path(sys.executable).with_name("codestill"))
SEEDS = [Seed(id=f"demo:m.scale{i}", name=f"scale{i}", signature=f"def scale{i}(xs)",
              code=f"def scale{i}(xs):\n    \"\"\"Each number of xs times {i}.\"\"\"\n    return [x * {i} for x in xs]\n")
         for i in range(2, 6)]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CODESTILL, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def seeds_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    write_jsonl(path, SEEDS)
    return path


@pytest.fixture(scope="module")
def model(seeds_file) -> Iterator[str]:
    with serve_subprocess(SimConfig(knowledge=(str(seeds_file),))) as url:
        yield f"openai:codestill-sim@{url}"


def test_instruct_then_evolve_with_a_dev_command_that_stops_the_rounds(tmp_path, seeds_file, model) -> None:
    ins, evo = tmp_path / "ins.jsonl", tmp_path / "evo.jsonl"
    done = _run("instruct", "--seeds", str(seeds_file), "--out", str(ins), "--model", model,
                "--set", "llm.max_concurrency=5")
    assert done.returncode == 0, done.stderr
    assert "instructions" in done.stdout and len(list(read_jsonl(ins, Task))) == 4
    stats = json.loads(ins.with_name("ins.stats.json").read_text())
    assert stats["settings"]["selfalign"]["shots"] == 8 and stats["instructions"] == 4
    assert stats["concurrency"] == 5  # unset: one seed per connection to the model server
    # the metric falls after round 2: rounds 1-2 run, round 3 does not
    dev = f"{sys.executable} -c \"import sys; print({{1: 0.5, 2: 0.4, 3: 0.9}}[int(sys.argv[1])])\" {{round}}"
    done = _run("evolve", "--seeds", str(ins), "--rounds", "4", "--out", str(evo), "--model", model,
                "--dev-command", dev, "--json", "--set", "evol.concurrency=3")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["stopped_after_round"] == 2 and out["dev_metric"] == {"1": 0.5, "2": 0.4}
    rounds = {t.origin.round for t in read_jsonl(evo, Task) if t.origin}
    assert rounds == {0, 1, 2}
    saved = json.loads(evo.with_name("evo.stats.json").read_text())
    assert saved["settings"]["evol"]["rounds"] == 4 and "api_key" not in json.dumps(saved)
    assert saved["concurrency"] == 3


def test_a_dev_command_without_a_number_is_one_clear_error(tmp_path, seeds_file, model) -> None:
    tasks = tmp_path / "t.jsonl"
    write_jsonl(tasks, [Task(id="t", instruction=seed_instruction(SEEDS[0]))])  # a task the simulator knows
    done = _run("evolve", "--seeds", str(tasks), "--rounds", "1", "--out", str(tmp_path / "o.jsonl"),
                "--model", model, "--dev-command", "true")
    assert done.returncode == 2 and "without a number" in done.stderr and "Traceback" not in done.stderr


def test_a_malformed_seed_file_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "name": "f"}\n')
    done = _run("instruct", "--seeds", str(bad), "--out", str(tmp_path / "o.jsonl"), "--model", "openai:m@http://127.0.0.1:9/v1")
    assert done.returncode == 2 and "bad.jsonl line 1" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.jsonl").exists()
    done = _run("evolve", "--seeds", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o.jsonl"))
    assert done.returncode == 2 and "no seed file" in done.stderr


def test_an_unreachable_model_server_is_one_clear_error_and_leaves_nothing(tmp_path, seeds_file) -> None:
    out = tmp_path / "o.jsonl"
    done = _run("instruct", "--seeds", str(seeds_file), "--out", str(out), "--model",
                "openai:codestill-sim@http://127.0.0.1:9/v1", "--set", "llm.max_retries=0")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "does not answer" in done.stderr and "start it" in done.stderr
    assert list(tmp_path.iterdir()) == []
