"""Batch generation end to end, as a user runs it: `codestill generate` then `codestill export` over 50
MBPP problems, against the simulated teacher with planted bugs and injected faults, the Docker sandbox
and an embedded Chroma memory.

The accepted samples are judged with tests no agent saw (MBPP+'s base and plus inputs, EvalPlus
protocol). Then the same run is killed with SIGKILL at five random moments and resumed each time: it
must end with exactly one trajectory per input, nothing torn, and the same accepted set as the
uninterrupted run.

The problems are 50 whose MBPP reference passes MBPP+ (the sim answers with the reference; 16 % of
MBPP's references fail MBPP+, and the judge would then blame the bank, not the agents); they were
chosen as ``bench/solve_overhead.py``'s ``pick_problems`` chooses them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from codestill.config import SandboxConfig
from codestill.data import load_mbpp
from codestill.run._ledger import read_entries
from codestill.schemas import SFTRecord, Trajectory
from codestill.sim import SimConfig, serve_subprocess
from tools.sandbox import DockerSandbox
from training.evaluate import judge

CODESTILL = str(Path(sys.executable).with_name("codestill"))
PROBLEMS = ["2", "4", "6", "7", "8", "9", "11", "12", "14", "17", "18", "19", "20", "56", "57", "58", "59", "61",
            "62", "63", "64", "65", "67", "68", "69", "70", "71", "72", "75", "77", "79", "80", "82", "85", "86",
            "87", "88", "89", "90", "91", "94", "95", "97", "98", "99", "100", "101", "102", "103", "105"]
SECRET = "sk-e2e-do-not-leak-7f3a"
SIM = SimConfig(seed=11, bug_rate=0.3, fault_rate=0.1, faults=("429", "500", "bad_json", "truncate"),
                retry_after_ms=50)


def _argv(seeds: Path, out: Path, url: str, memory: Path) -> list[str]:
    return [CODESTILL, "generate", "--seeds", str(seeds), "--pipeline", "solve", "--out", str(out),
            "--model", f"openai:codestill-sim@{url}", "--concurrency", "16", "--set", f"memory.path={memory}",
            "--set", "solve.max_repairs=2", "--set", "sandbox.pool_size=2"]


def _env() -> dict[str, str]:
    return {**os.environ, "CODESTILL_LLM__API_KEY": SECRET}


def _trajectories(run: Path) -> list[Trajectory]:
    lines = (run / "trajectories.jsonl").read_bytes().splitlines()
    return [Trajectory.model_validate_json(line) for line in lines]  # a torn line would fail here


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    path = tmp_path_factory.mktemp("seeds") / "mbpp50.jsonl"
    path.write_text("".join(bank[i].to_task().model_dump_json() + "\n" for i in PROBLEMS))
    return path


@pytest.fixture(scope="module")
def clean_run(seeds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run (its own sim server and memory), then its export."""
    tmp = tmp_path_factory.mktemp("clean")
    run = tmp / "run"
    with serve_subprocess(SIM) as url:
        done = subprocess.run([*_argv(seeds, run, url, tmp / "memory"), "--json"], capture_output=True, text=True,
                              timeout=900, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    exported = subprocess.run([CODESTILL, "export", str(run), "--no-decontam"], capture_output=True, text=True,
                              timeout=600)
    assert exported.returncode == 0, exported.stderr[-3000:]
    return run


def test_generate_then_export_end_to_end(clean_run: Path) -> None:
    trajectories = _trajectories(clean_run)
    assert sorted(t.task.id for t in trajectories) == sorted(f"mbpp/{i}" for i in PROBLEMS)
    accepted = {t.task.id.rsplit("/", 1)[-1]: t.final_code for t in trajectories
                if t.verdict == "accepted" and t.final_code is not None}
    assert len(accepted) >= 45, Counter(t.reason.split(":")[0] for t in trajectories if t.verdict != "accepted")
    # planted bugs were caught and repaired on the way
    assert any(a.round > 0 for t in trajectories for a in t.attempts)

    async def hidden() -> dict:
        async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
            return await judge("mbpp+", accepted, sandbox, clean_run.parent / "truth")

    judged = asyncio.run(hidden())
    assert set(judged) == {f"mbpp/{i}" for i in accepted}
    wrong = {i: r.feedback() if r is not None else None for i, r in judged.items() if r is None or not r.passed}
    assert not wrong, wrong

    stats = json.loads((clean_run / "stats.json").read_text())
    assert stats["yield"]["accepted"] == len(accepted) and stats["yield"]["inputs"] == 50
    assert stats["yield"]["repairs"] > 0 and stats["yield"]["modules_written"] > 0
    assert stats["tokens"]["per_accepted"] > 0 and stats["wall_s_per_accepted"] > 0 and stats["complete"]
    config = json.loads((clean_run / "config.json").read_text())
    assert config["pipeline"] == "solve" and len(config["seeds_sha256"]) == 64 and config["code"]["codestill"]
    assert config["models"]["coder"].startswith("openai:codestill-sim@")
    for path in clean_run.rglob("*"):  # the key reached the model client, and nothing on disk
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path

    export = clean_run / "export"
    records = [SFTRecord.model_validate_json(line) for line in (export / "sft.jsonl").read_bytes().splitlines()]
    code = [r for r in records if r.task == "code"]
    plans = [r for r in records if r.task == "plan"]
    assert {r.provenance.task_id for r in code} <= {f"mbpp/{i}" for i in accepted}
    assert len(code) >= len(accepted) - 2  # near-duplicate instructions may go; nothing else
    assert {t for r in plans for t in r.tags} >= {"plan:forward", "plan:backward"}
    for r in code:
        assert r.provenance is not None and accepted[r.provenance.task_id.rsplit("/", 1)[-1]].strip() in r.messages[-1].content
    assert (export / "README.md").is_file()


def _committed(run: Path) -> int:
    return len(read_entries(run)) if (run / "ledger.sqlite").exists() else 0


def _sessions(run: Path) -> int:
    path = run / "config.json"
    return len(json.loads(path.read_text())["sessions"]) if path.exists() else 0


def _kill_after(argv: list[str], run: Path, more: int, rng: random.Random) -> int:
    """Start the run, let it commit ``more`` inputs (0: until it has opened the run), wait a random moment
    more, and SIGKILL it."""
    base, sessions = _committed(run), _sessions(run)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if (_committed(run) >= base + more) if more else (_sessions(run) > sessions):
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def test_killed_five_times_then_resumed_matches_the_clean_run(seeds: Path, clean_run: Path, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    run = tmp_path / "run"
    steps = [rng.randint(1, 8) for _ in range(4)]
    with serve_subprocess(SIM) as url:
        argv = _argv(seeds, run, url, tmp_path / "memory")
        codes = [_kill_after(argv, run, 0, rng)]  # once while it starts, before anything is committed
        codes += [_kill_after(argv, run, more, rng) for more in steps]
        done = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=900, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert codes == [-signal.SIGKILL] * 5, codes  # every kill landed mid-run, not after it ended
    trajectories = _trajectories(run)
    ids = [t.task.id for t in trajectories]
    assert sorted(ids) == sorted(f"mbpp/{i}" for i in PROBLEMS) and len(set(ids)) == len(ids) == 50
    assert len(read_entries(run)) == 50
    clean = {t.task.id for t in _trajectories(clean_run) if t.verdict == "accepted"}
    assert {t.task.id for t in trajectories if t.verdict == "accepted"} == clean
    config = json.loads((run / "config.json").read_text())
    assert len(config["sessions"]) == 6
