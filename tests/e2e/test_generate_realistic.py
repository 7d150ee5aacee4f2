"""`codestill generate` against a teacher that is not the answer key: the simulator's imperfect profile
(``--teacher realistic``: flawed suites, wrong first answers, bent repairs, unreadable and over-confident
critiques), on 24 MBPP problems given without their tests, so the tester's suites are all the evidence.

Every accepted sample is judged afterwards with MBPP+'s inputs, which no agent saw. The problems are
ones whose MBPP reference passes MBPP+ (the sim answers from the reference: where the reference itself is
wrong, so are its tests, and no gate can tell; ``bench/data_precision.py`` measures that part).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter
from pathlib import Path

from codestill.config import SandboxConfig
from codestill.data import load_mbpp
from codestill.schemas import Trajectory
from codestill.sim import SimConfig, serve_subprocess
from tests.e2e.test_generate_sim import CODESTILL, PROBLEMS
from tools.sandbox import DockerSandbox
from training.evaluate import judge

CHOSEN = PROBLEMS[:24]


def test_a_realistic_teacher_gets_no_wrong_sample_through(tmp_path: Path) -> None:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    seeds = tmp_path / "tasks.jsonl"
    seeds.write_text("".join(bank[i].to_task().model_copy(update={"tests": None}).model_dump_json() + "\n"
                             for i in CHOSEN))
    run = tmp_path / "run"
    with serve_subprocess(SimConfig(seed=5, teacher="realistic", cache_dir=str(tmp_path / "sim"))) as url:
        done = subprocess.run([CODESTILL, "generate", "--seeds", str(seeds), "--pipeline", "solve", "--out", str(run),
                               "--model", f"openai:codestill-sim@{url}", "--concurrency", "8", "--json",
                               "--set", f"memory.path={tmp_path / 'memory'}", "--set", "sandbox.pool_size=2"],
                              capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    trajectories = [Trajectory.model_validate_json(line) for line in (run / "trajectories.jsonl").read_text().splitlines()]
    accepted = {t.task.id.rsplit("/", 1)[-1]: t for t in trajectories if t.verdict == "accepted"}
    reasons = Counter(t.reason.split(":")[0] for t in trajectories if t.verdict != "accepted")

    async def hidden() -> dict:
        async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
            return await judge("mbpp+", {i: t.final_code for i, t in accepted.items()}, sandbox, tmp_path / "truth")

    judged = asyncio.run(hidden())
    wrong = {i: (accepted[i.rsplit("/", 1)[-1]].final_code, r.feedback() if r else None)
             for i, r in judged.items() if r is None or not r.passed}
    assert not wrong, json.dumps(wrong, indent=1)[:4000]  # with wave 1's gates, mbpp/6's planted bug got through
    assert len(accepted) >= 16, reasons
    # the teacher erred, and the gates saw it: suites sent back, disputes, unread replies
    attempts = [a for t in trajectories for a in t.attempts]
    sent_back = [a for a in attempts if a.critique is not None and a.critique.verdict != "accept"]
    assert len(sent_back) >= 5 and any(a.critique.weak_tests for a in sent_back)
    assert all(t.mutation_score is not None and t.mutation_score >= 0.6 for t in accepted.values())
