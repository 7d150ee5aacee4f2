"""The real-model tier: SmolLM2-135M-Instruct (a real, weak LLM) drives every agent of `codestill generate`
with the real sandbox and memory, in-process through `hf:` (batched local generation). The same path
behind `transformers serve` (a real OpenAI-compatible server that ignores tools and response formats) is
``bench/real_model.py``'s default: it left `make test` when the suite reached the 20 minutes it may take
on two cores (it took about 90 s for one problem).

What must hold with a model this weak is not that it solves much, but that nothing breaks: every input
ends with a verdict and a reason, every model call and its tokens are in the trace, nothing that MBPP+
finds wrong is accepted, and nothing crashes or hangs. The run is small on purpose (one easy problem,
short role limits): it runs in `make test` on two CPU cores. ``bench/real_model.py`` measures the same
path on 30 problems.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from codestill.config import SandboxConfig
from codestill.data import load_mbpp
from codestill.schemas import Trajectory
from codestill.traces import TraceStore
from tests.e2e.test_generate_sim import CODESTILL
from tests.real_model import smollm2
from tools.sandbox import DockerSandbox
from training.evaluate import judge

# An easy problem of the sanitized MBPP test split (a short reference): the square's perimeter (one
# problem keeps `make test` within its 20 minutes). Settings keep a CPU run short: short replies per
# role, one tester sample, no re-asks,
# no repairs; the gates are the product's own.
PROBLEMS = ("17",)  # through hf: in-process (bench/real_model.py runs 30)
CONFIG = """
[llm]
temperature = 0
timeout_s = 120
max_retries = 1
max_tokens = 256
repair_rounds = 0
[llm.role_max_tokens]
planner = 96
decomposer = 96
critic = 64
tester = 160
coder = 192
[solve]
max_repairs = 0
max_replans = 0
tester_samples = 1
critic_retries = 0
"""


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return smollm2()


def _generate(tmp_path: Path, spec: str, problems: tuple[str, ...]) -> tuple[list[Trajectory], dict, Path, tuple[str, ...]]:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    seeds = tmp_path / "tasks.jsonl"
    seeds.write_text("".join(bank[i].to_task().model_dump_json() + "\n" for i in problems))
    config = tmp_path / "codestill.toml"
    config.write_text(CONFIG + f'[memory]\npath = "{tmp_path / "memory"}"\n')
    run = tmp_path / "run"
    done = subprocess.run([CODESTILL, "generate", "--seeds", str(seeds), "--out", str(run), "--model", spec,
                           "--config", str(config), "--concurrency", str(len(problems)), "--json"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (run / "trajectories.jsonl").read_text().splitlines()
    return ([Trajectory.model_validate_json(x) for x in lines], json.loads((run / "stats.json").read_text()), run,
            problems)




def _check(tmp_path: Path, trajectories: list[Trajectory], stats: dict, run: Path, problems: tuple[str, ...]) -> None:
    # every input ends with a verdict and a reason
    assert sorted(t.task.id for t in trajectories) == sorted(f"mbpp/{i}" for i in problems)
    assert all(t.verdict in ("accepted", "rejected", "failed") and t.reason.strip() for t in trajectories)
    # every model call, with its tokens, is in the trace
    store = TraceStore(run / "traces.sqlite")
    try:
        runs = store.list_runs(limit=100)
        llm_spans = [s for r in runs for s in store.tree(r.id, payloads=False).walk() if s.kind == "llm"]
    finally:
        store.close()
    assert len(llm_spans) == stats["llm_calls"] > 0
    answered = [s for s in llm_spans if s.status == "ok"]
    assert answered and all(s.prompt_tokens and s.completion_tokens for s in answered)
    assert stats["tokens"]["total"] == sum(s.tokens for s in llm_spans)
    # every reply is counted per role (a call that failed outright made none), unreadable ones among them
    replies = stats["replies"]
    assert sum(r["replies"] for r in replies.values()) == len(answered)
    assert all(r["unreadable"] <= r["replies"] and r["cut_off"] <= r["replies"] for r in replies.values())
    # nothing wrong is accepted: MBPP+'s inputs judge every accepted solution
    accepted = {t.task.id: t.final_code for t in trajectories if t.verdict == "accepted" and t.final_code is not None}

    async def truth() -> dict:
        if not accepted:
            return {}
        async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
            return await judge("mbpp+", accepted, sandbox, tmp_path / "truth")

    wrong = {i: r.feedback() if r else None for i, r in asyncio.run(truth()).items() if r is None or not r.passed}
    assert not wrong, wrong
    print(f"accepted {len(accepted)}/{len(problems)}; replies per role: {json.dumps(replies)}; "
          f"reasons: {[t.reason[:160] for t in trajectories]}")


@pytest.mark.timeout(600)
def test_smollm2_in_process_through_hf(tmp_path: Path, model_dir: Path) -> None:
    _check(tmp_path, *_generate(tmp_path, f"hf:{model_dir}", PROBLEMS))
