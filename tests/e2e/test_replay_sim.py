"""Replay on real parts: record solve runs against the simulated teacher over HTTP (planted bugs on),
the Docker sandbox and an embedded Chroma memory; stop the simulator; replay from the trace alone.

mbpp/591 runs first and leaves ``swap_List`` in the memory; mbpp/625 (the same function) then
retrieves it, so its replay must answer a memory search from the recording too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from codestill.config import LLMConfig, MemoryConfig, SandboxConfig, SolveConfig
from codestill.data import load_mbpp
from codestill.llm import aclose, make_chat_model
from codestill.run._replay import replay
from codestill.sim import SimConfig, serve_subprocess
from codestill.traces import SqliteTracer, TraceStore
from codestill.traces.replay import Recording, ReplayMismatch, compare
from graphs import AGENT_ROLES, SolveDeps, solve
from memory import ModuleMemory
from tools.sandbox import DockerSandbox

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["591", "625"]
CONFIG = SolveConfig(max_repairs=2)


async def _record(url: str, memory: ModuleMemory, store: Path) -> list[Any]:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    spec = f"openai:codestill-sim@{url}"
    model = make_chat_model(spec, LLMConfig(api_key=SecretStr("sk-e2e"), max_retries=4, timeout_s=10.0))
    try:
        async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
            deps = SolveDeps(models={r: model for r in AGENT_ROLES}, sandbox=sandbox, memory=memory, config=CONFIG,
                             model_names={r: spec for r in AGENT_ROLES})
            with SqliteTracer(store, redact=["sk-e2e"]) as tracer:
                return [await solve(bank[i].to_task(), deps, callbacks=[tracer]) for i in TASKS]
    finally:
        await aclose(model)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The store, and task id -> (recorded trajectory, run id); the simulator is stopped on return."""
    tmp = tmp_path_factory.mktemp("replay")
    store = tmp / "traces.sqlite"
    with serve_subprocess(SimConfig(seed=3, bug_rate=0.4)) as url, \
            ModuleMemory(MemoryConfig(path=tmp / "memory")) as memory:
        trajectories = asyncio.run(_record(url, memory, store))
    with TraceStore(store) as traces:
        runs = {r.task_id: r.id for r in traces.list_runs()}
    return store, {t.task.id: (t, runs[t.task.id]) for t in trajectories}


async def _replay(store: Path, run: str, **kwargs: Any) -> tuple[Any, Any]:
    with TraceStore(store) as traces:
        recording = Recording.from_tree(traces.tree(run))
    async with DockerSandbox(SandboxConfig(pool_size=1)) as sandbox:
        with SqliteTracer(store) as tracer:
            replayed = await replay(recording, sandbox, config=CONFIG, callbacks=[tracer], **kwargs)
    return recording, replayed


def test_a_recorded_run_replays_to_the_same_verdict_without_a_model_server(recorded):
    store, runs = recorded
    original, run = runs["mbpp/625"]
    assert original.memory_hits, "the second task must have retrieved the first one's module"
    recording, replayed = asyncio.run(_replay(store, run))
    assert recording.task == original.task and recording.structured_method() == "tools"
    t = replayed.trajectory
    assert (t.verdict, t.reason) == (original.verdict, original.reason)
    assert t.final_code == original.final_code and len(t.attempts) == len(original.attempts)
    assert [h.module.id for h in t.memory_hits] == [h.module.id for h in original.memory_hits]
    assert t.reused_modules == original.reused_modules and t.usage.total_tokens == original.usage.total_tokens
    with TraceStore(store) as traces:
        comparison = compare(traces.tree(run), traces.tree(replayed.run_id))
    assert comparison.same, comparison
    assert any("critique=" in line for line in comparison.original_route)


def test_a_changed_prompt_stops_the_replay_naming_the_call(recorded):
    store, runs = recorded
    _, run = runs["mbpp/591"]
    # Asking for structured replies in the prompt changes every JSON request (plans, code, tests and verdicts
    # are asked for in their text form whatever the method): the decomposer's is the first.
    with pytest.raises(ReplayMismatch) as caught:
        asyncio.run(_replay(store, run, structured="prompt"))
    message = str(caught.value)
    assert "the decomposer at node 'decompose' made an LLM call the recording lacks" in message
    assert "first differs at character" in message and "The unmatched prompt starts: 'Reply with" in message
    assert "codestill traces show" in message


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from codestill.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


def test_cli_replays_by_short_id_and_reports_a_mismatch_in_one_line(recorded):
    store, runs = recorded
    original, run = runs["mbpp/591"]
    done = cli("replay", run[-8:], "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["original"] == run and report["same"] is True
    assert report["replayed_verdict"] == original.verdict == "accepted"
    done = cli("replay", run[-8:], "--store", str(store))
    assert done.returncode == 0 and "same route" in done.stdout and "same verdict" in done.stdout
    done = cli("replay", run[-8:], "--store", str(store), "--structured", "prompt")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "replay stopped: the decomposer at node 'decompose'" in done.stderr


def test_cli_shows_where_a_routing_change_parts_the_routes(recorded):
    store, runs = recorded
    original, run = runs["mbpp/591"]
    assert any(a.critique and a.critique.verdict == "repair" for a in original.attempts), "needs a repaired run"
    # No repairs and no replans: the first failing attempt now ends the task (no new LLM call is needed).
    done = cli("replay", run[-8:], "--store", str(store), "--set", "solve.max_repairs=0",
               "--set", "solve.max_replans=0")
    assert done.returncode == 1, done.stderr
    out = " ".join(done.stdout.split())
    assert "the routes differ" in out and "verdict changed" in out and "repeated_failure" in out
    # (a failing run of the tester's own asserts is first disputed: the tester re-derives them, then the coder repairs)
    dispute = r"(?:test \d+/\d+ > critique=repair > )?"
    assert re.search(r"-branch r0\.p0: draft > decompose > retrieve > code > test \d+/\d+ > critique=repair > "
                     + dispute + "code", out)
    assert re.search(r"\+branch r0\.p0: draft > decompose > retrieve > code > test \d+/\d+ > critique=repair > "
                     + dispute + "finish", out)
    assert "+select=rejected" in out and "-commit" in out
