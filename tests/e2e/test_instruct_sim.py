"""Where instructions come from, end to end on real parts: seeds mined from this machine's standard
library, SelfCodeAlign instructions and two rounds of Code Evol-Instruct written by the simulated
teacher over HTTP (with failed evolutions at a set rate), then every instruction solved by the solve
graph with the Docker sandbox and an embedded Chroma memory. Each step runs through its command, as a
user runs it; the accepted samples are counted per source.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pydantic import SecretStr

from codestill.config import LLMConfig, MemoryConfig, SandboxConfig, SolveConfig
from codestill.llm import aclose, make_chat_model
from codestill.records import read_jsonl
from codestill.schemas import Seed, Task, Trajectory
from codestill.sim import SimConfig, serve_subprocess
from graphs import AGENT_ROLES, SolveDeps, build_graph, solve
from memory import ModuleMemory
from tools.sandbox import DockerSandbox

CODESTILL = str(Path(sys.executable).with_name("codestill"))


def _cli(*args: str, cwd: Path | None = None) -> dict:
    done = subprocess.run([CODESTILL, *args, "--json"], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


async def _solve_all(url: str, tasks: list[Task], memory: ModuleMemory) -> list[Trajectory]:
    spec = f"openai:codestill-sim@{url}"
    model = make_chat_model(spec, LLMConfig(api_key=SecretStr("sk-e2e"), max_retries=4, timeout_s=30.0))
    try:
        async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
            deps = SolveDeps(models=dict.fromkeys(AGENT_ROLES, model), sandbox=sandbox, memory=memory,
                             config=SolveConfig(max_repairs=2), model_names=dict.fromkeys(AGENT_ROLES, spec))
            graph, sem = build_graph(), asyncio.Semaphore(16)

            async def one(task: Task) -> Trajectory:
                async with sem:
                    return await solve(task, deps, graph=graph)

            return await asyncio.gather(*(one(t) for t in tasks))
    finally:
        await aclose(model)


def test_mine_instruct_evolve_solve(tmp_path: Path) -> None:
    seeds_file, ins, evo = tmp_path / "seeds.jsonl", tmp_path / "ins.jsonl", tmp_path / "evo.jsonl"
    report = _cli("seeds", "mine", "--stdlib", "--limit", "50", "--out", str(seeds_file))
    seeds = list(read_jsonl(seeds_file, Seed))
    assert len(seeds) == 50, report
    assert len({s.module.split(".")[0] for s in seeds}) >= 10  # spread over the library, not one module
    sim = SimConfig(seed=5, bug_rate=0.2, evol_fail_rate=0.25, knowledge=(str(seeds_file),))
    with serve_subprocess(sim) as url, ModuleMemory(MemoryConfig(path=tmp_path / "memory")) as memory:
        model = f"openai:codestill-sim@{url}"
        made = _cli("instruct", "--seeds", str(seeds_file), "--out", str(ins), "--model", model)
        assert made["instructions"] == 50 and made["seeds_without"] == 0, made
        again = _cli("instruct", "--seeds", str(seeds_file), "--out", str(ins), "--model", model)
        assert again["usage"]["calls"] == 0 and again["instructions"] == 50  # resumed: nothing redone
        # the dev check solves 4 of each round's instructions (sandbox, memory and checkpoints under cwd)
        stats = _cli("evolve", "--seeds", str(ins), "--rounds", "2", "--out", str(evo), "--model", model,
                     "--dev-solve", "4", cwd=tmp_path)
        tasks = list(read_jsonl(evo, Task))
        trajectories = asyncio.run(_solve_all(url, tasks, memory))
    by_source = Counter(t.source for t in tasks)
    accepted = Counter(t.task.source for t in trajectories if t.verdict == "accepted")
    rounds = Counter(t.task.origin.round for t in trajectories if t.verdict == "accepted" and t.task.origin)
    reasons = Counter(t.reason for t in trajectories if t.verdict != "accepted")
    print(f"\nseeds mined: {report['seeds']} of {report['functions']} functions; removed: {report['removed']}")
    print(f"evolution: {stats['evolutions_tried']} tried, {stats['survived']} survived, "
          f"eliminated shares {stats['eliminated_share']}; dev accept rate per round {stats['dev_metric']}")
    print(f"instructions per source: {dict(by_source)}; accepted per source: {dict(accepted)}; "
          f"accepted per round: {dict(sorted(rounds.items()))}; rejected: {dict(reasons)}")
    assert by_source["selfalign"] == 50 and by_source["evol"] == stats["survived"] > 0
    # with failures at 25 %, some evolutions must have been eliminated, for more than one reason
    assert len(stats["eliminated"]) >= 2, stats
    assert sum(stats["eliminated"].values()) + stats["survived"] == stats["evolutions_tried"]
    # the simulator knows every seed, so instructions and their evolutions are solvable: many are accepted.
    # Not all: a seed whose arguments it cannot guess gets no tests, and guessed calls often miss a
    # function's boundaries, so the mutation gate finds the suite too weak (22 and 29 of 50 here)
    assert accepted["selfalign"] >= 18 and accepted["evol"] >= 18, (accepted, reasons)
    assert all(r.startswith("repeated_failure") for r in reasons), reasons  # nothing else went wrong
    assert rounds[2] > 0
    # the dev check ran after each round: an accept rate in [0, 1]
    assert set(stats["dev_metric"]) == {"1", "2"} and all(0 <= m <= 1 for m in stats["dev_metric"].values())
