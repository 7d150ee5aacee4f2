"""A trace store filled by a real small run: the solve graph on a few MBPP problems, answered by the
simulated teacher over HTTP (planted bugs and injected bad-JSON / cut-off replies on), executed in
the sandbox's harness in local processes (``LocalSandbox``), with the in-process memory
(``FakeMemory``), traced by ``SqliteTracer``. The viewer reads only the store; what filled it need
not be Docker or Chroma (both fakes pass their backends' conformance suites).

With sim seed 1 the planner's reply for mbpp/102 comes back unreadable (a rejected run,
``model_failure``), and mbpp/758's first answer carries a planted bug that the critic sends back for
repair (an accepted run with two attempts). The fixture checks both are there, so a change in the
sim shows up as a clear failure here rather than as a confusing one in the viewer's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from codestill.config import LLMConfig, SandboxConfig, SolveConfig
from codestill.data import load_mbpp
from codestill.llm import aclose, make_chat_model
from codestill.schemas import Task, TestSuite, Trajectory
from codestill.sim import SimConfig, serve_subprocess
from codestill.traces import SqliteTracer
from graphs import AGENT_ROLES, SolveDeps, build_graph, solve
from memory import FakeMemory
from tools.sandbox import LocalSandbox

PROBLEMS = ["591", "758", "102", "267"]
SIM = SimConfig(seed=1, bug_rate=0.7, fault_rate=0.3, faults=("bad_json", "truncate"))
API_KEY = "sk-viewer-test"
# A task the simulated teacher has no reference for: its code raises NotImplementedError, so the run is
# rejected whatever the seed rolls (the viewer's walk filters to rejected runs).
UNKNOWN = Task(id="viewer/unknown", instruction="Write a function zorblax(n) that returns the n-th zorblax "
               "number of the Zorblax society's private table.", entry_point="zorblax",
               tests=TestSuite(code="assert zorblax(3) == 7\nassert zorblax(4) == 11\n"))


@dataclass(frozen=True)
class SolvedStore:
    path: Path
    trajectories: dict[str, Trajectory]  # by task id

    def task_with(self, verdict: str, min_attempts: int = 0) -> str:
        return next(t for t, tr in self.trajectories.items()
                    if tr.verdict == verdict and len(tr.attempts) >= min_attempts)


async def _solve_all(url: str, memory: FakeMemory, store: Path) -> list[Trajectory]:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    spec = f"openai:codestill-sim@{url}"
    model = make_chat_model(spec, LLMConfig(api_key=SecretStr(API_KEY), max_retries=4, timeout_s=10.0))
    try:
        async with LocalSandbox(SandboxConfig(pool_size=2)) as sandbox:
            deps = SolveDeps(models={r: model for r in AGENT_ROLES}, sandbox=sandbox, memory=memory,
                             config=SolveConfig(max_repairs=1), model_names={r: spec for r in AGENT_ROLES})
            graph = build_graph()
            with SqliteTracer(store, redact=[API_KEY]) as tracer:
                tasks = [bank[i].to_task() for i in PROBLEMS] + [UNKNOWN]
                out = await asyncio.gather(*(solve(t, deps, graph=graph, callbacks=[tracer]) for t in tasks))
                assert tracer.stats.errors == 0
            return list(out)
    finally:
        await aclose(model)


@pytest.fixture(scope="session")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SolvedStore]:
    folder = tmp_path_factory.mktemp("viewer-store")
    store = folder / "traces.sqlite"
    with serve_subprocess(SIM) as url:
        trajectories = asyncio.run(_solve_all(url, FakeMemory(), store))
    by_task = {t.task.id: t for t in trajectories}
    summary = {t: (tr.verdict, len(tr.attempts)) for t, tr in by_task.items()}
    assert any(v == "rejected" for v, _ in summary.values()), summary
    assert any(v == "accepted" and n >= 2 for v, n in summary.values()), summary
    yield SolvedStore(store, by_task)
