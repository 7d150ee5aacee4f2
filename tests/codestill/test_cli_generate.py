"""`codestill generate` as a user runs it: bad inputs, Ctrl-C and resume, a run directory that holds
another run, the instruction pipelines, and the Ray engine on a local Ray instance. Real parts
throughout: the simulated teacher over HTTP, Docker, an embedded Chroma memory (a Chroma server for Ray)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codestill.data import load_mbpp
from codestill.run._ledger import read_entries
from codestill.schemas import Trajectory
from codestill.sim import SimConfig, serve_subprocess
from codestill.traces import TraceStore

CODESTILL = str(Path(sys.executable).with_name("codestill"))
EASY = ["2", "4", "6", "7", "8", "9", "11", "12", "14", "17", "18", "19"]


def _seeds(path: Path, ids: list[str]) -> Path:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    path.write_text("".join(bank[i].to_task().model_dump_json() + "\n" for i in ids))
    return path


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CODESTILL, "generate", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CODESTILL_LLM__API_KEY": "sk-test"})


def _common(url: str, tmp: Path) -> list[str]:
    return ["--model", f"openai:codestill-sim@{url}", "--set", f"memory.path={tmp / 'memory'}",
            "--set", "sandbox.pool_size=2"]


def _ids(run: Path) -> list[str]:
    return [Trajectory.model_validate_json(line).task.id
            for line in (run / "trajectories.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def sim_url():
    with serve_subprocess(SimConfig(seed=4, bug_rate=0.2, latency_s=0.2)) as url:
        yield url


@pytest.mark.parametrize("content, strict, message", [
    (b"", False, "is empty"),
    (b'{"instruction": "Add a and b."}\n{oops\n', True, r"1 bad line\(s\), nothing started \(--strict\)"),
    (b"\xff\xfe{}\n", False, r"line 1: not UTF-8"),
])
def test_bad_input_is_one_message_and_nothing_is_started(tmp_path, content, strict, message):
    seeds = tmp_path / "in.jsonl"
    seeds.write_bytes(content)
    done = _run("--seeds", str(seeds), "--out", str(tmp_path / "run"), *(["--strict"] if strict else []))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error:")
    assert re.search(message, done.stderr), done.stderr
    assert not (tmp_path / "run").exists()


def test_ctrl_c_finishes_what_is_in_flight_then_resume_completes(sim_url, tmp_path):
    seeds, run = _seeds(tmp_path / "in.jsonl", EASY), tmp_path / "run"
    args = ["--seeds", str(seeds), "--out", str(run), "--concurrency", "3", *_common(sim_url, tmp_path)]
    proc = subprocess.Popen([CODESTILL, "generate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CODESTILL_LLM__API_KEY": "sk-test"})
    deadline = time.monotonic() + 300
    while not ((run / "ledger.sqlite").exists() and read_entries(run)) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "resume with: codestill generate" in err and "Traceback" not in err
    done_at_stop = len(read_entries(run))
    assert 1 <= done_at_stop < len(EASY)
    assert len(_ids(run)) == done_at_stop  # the ones in flight finished and were saved, nothing torn
    stats = json.loads((run / "stats.json").read_text())
    assert stats["stopped_by"] == "user" and not stats["complete"]

    again = _run(*args, "--json")
    assert again.returncode == 0, again.stderr
    assert "resuming the run" in again.stderr
    assert sorted(_ids(run)) == sorted(f"mbpp/{i}" for i in EASY)
    assert json.loads(again.stdout)["inputs"]["done"] == len(EASY)
    assert len(json.loads((run / "config.json").read_text())["sessions"]) == 2
    # a run directory holds one run: other inputs are refused with the fix
    other = _seeds(tmp_path / "other.jsonl", EASY[:3])
    refused = _run("--seeds", str(other), "--out", str(run), *_common(sim_url, tmp_path))
    assert refused.returncode == 2 and "holds a run with another seeds_sha256" in refused.stderr


def test_evol_and_selfalign_pipelines_count_their_stages(tmp_path):
    mined = subprocess.run([CODESTILL, "seeds", "mine", str(Path(sys.base_prefix) / "lib/python3.11/bisect.py"),
                            "--limit", "3", "--out", str(tmp_path / "seeds.jsonl")], capture_output=True, text=True,
                           timeout=300)
    assert mined.returncode == 0, mined.stderr
    tasks = _seeds(tmp_path / "tasks.jsonl", EASY[:4])
    sim = SimConfig(seed=6, evol_fail_rate=0.3, knowledge=(str(tmp_path / "seeds.jsonl"),))
    with serve_subprocess(sim) as url:
        evol = _run("--seeds", str(tasks), "--pipeline", "evol+solve", "--out", str(tmp_path / "evol"),
                    "--set", "evol.rounds=2", *_common(url, tmp_path), "--json")
        selfalign = _run("--seeds", str(tmp_path / "seeds.jsonl"), "--pipeline", "selfalign+solve",
                         "--out", str(tmp_path / "sa"), *_common(url, tmp_path), "--json")
    assert evol.returncode == 0, evol.stderr
    stats = json.loads(evol.stdout)["yield"]
    assert stats["inputs"] == 4 and stats["instructions"] == 4 + stats["evolved"] and stats["evolved"] >= 1
    assert stats["solved_tasks"] == stats["instructions"]
    trajectories = [Trajectory.model_validate_json(line)
                    for line in (tmp_path / "evol" / "trajectories.jsonl").read_bytes().splitlines()]
    assert {t.task.source for t in trajectories} == {"mbpp", "evol"}
    assert all(t.task.origin is not None and t.task.origin.heuristic for t in trajectories if t.task.source == "evol")
    # one evol-graph run per input goes on round after round, up to evol.rounds and no further
    assert {t.task.origin.round for t in trajectories if t.task.origin is not None} <= {0, 1, 2}
    assert any(t.task.origin is not None and t.task.origin.round == 2 for t in trajectories)
    assert selfalign.returncode == 0, selfalign.stderr
    stats = json.loads(selfalign.stdout)
    mined_seeds = len((tmp_path / "seeds.jsonl").read_text().splitlines())
    assert stats["yield"]["inputs"] == mined_seeds >= 1
    assert stats["yield"]["solved_tasks"] == stats["yield"]["instructions"] >= 1
    assert stats["tokens"]["instructions"]["calls"] > 0  # the instruction stage's own model calls are counted


def test_ray_engine_shards_the_run_and_merges_it(sim_url, tmp_path):
    seeds, run = _seeds(tmp_path / "in.jsonl", EASY[:6]), tmp_path / "run"
    args = ["--seeds", str(seeds), "--out", str(run), "--engine", "ray", "--workers", "2", "--concurrency", "8",
            *_common(sim_url, tmp_path), "--json"]
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    assert sorted(_ids(run)) == sorted(f"mbpp/{i}" for i in EASY[:6])
    shards = sorted(p.name for p in (run / "shards").iterdir())
    assert shards == ["0-of-2", "1-of-2"]
    assert all(len(read_entries(run / "shards" / s)) == 3 for s in shards)
    assert len(read_entries(run)) == 6
    with TraceStore(run / "traces.sqlite") as store:  # one store for the run, as a local run leaves
        assert {r.task_id for r in store.list_runs(100) if r.graph == "solve"} == {f"mbpp/{i}" for i in EASY[:6]}
    assert json.loads(done.stdout)["yield"]["solved_tasks"] == 6
    again = _run(*args)  # resuming a finished Ray run changes nothing
    assert again.returncode == 0, again.stderr
    assert sorted(_ids(run)) == sorted(f"mbpp/{i}" for i in EASY[:6])
