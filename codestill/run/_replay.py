"""Replay a recorded solve run: the same task through today's graph, with every LLM answer and memory
hit taken from the recording and the sandbox real. What changed in routing, the critic's rules or
the sandbox shows as a different route or verdict; a call the recording lacks stops the replay.

    recording = Recording.from_tree(store.tree(run_id))
    replayed = await replay(recording, sandbox, config=settings.solve, callbacks=[tracer])
    replayed.trajectory, replayed.run_id   # the new verdict, and the replay's own run in the trace

The memory is not the one the recorded run saw (later runs have added to it), so searches are
answered from the recording (``ReplayMemory``) and nothing is written to any memory: a replay is a
re-run for comparison, not new data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from codestill.config import SolveConfig
from codestill.ports import AddResult, Sandbox
from codestill.schemas import MemoryHit, Module, ModuleSpec, Trajectory
from codestill.traces.replay import Recording, ReplayChatModel, ReplayMismatch
from graphs import AGENT_ROLES, SolveDeps, solve

Structured = Literal["tools", "json_schema", "prompt"]


class ReplayMemory:
    """The ``memory.Memory`` protocol answered from a recording: searches return what the recorded
    run's memory returned for the same module spec; adds write nothing and report the ids the
    recorded run's memory gave, in order; reuse marks are dropped."""

    def __init__(self, recording: Recording) -> None:
        self._recording = recording

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]:
        # The recorded hits are the branch's merged hits over all its specs: returned for each spec,
        # the branch merges them to exactly the recorded list again.
        return self._recording.hits(spec)

    async def aadd(self, module: Module) -> AddResult:
        found = self._recording.next_added()
        if found is None:
            return AddResult("unverified", None, "a replay writes nothing to the memory")
        return AddResult("added", found, "the id the recorded run's memory gave (nothing was written)")

    async def amark_reused(self, ids: list[str]) -> None:
        return None


def replay_deps(recording: Recording, sandbox: Sandbox, *, config: SolveConfig | None = None,
                structured: Structured | None = None, repair_rounds: int = 1) -> SolveDeps:
    """Deps whose models and memory answer from ``recording``; ``structured`` defaults to the method
    the recorded agents used (it shapes the requests, so it must match for them to be found)."""
    models = {r: ReplayChatModel(recording=recording, role=r, model_name=f"replay:{recording.run_id[-8:]}")
              for r in AGENT_ROLES}
    return SolveDeps(models=models, sandbox=sandbox, memory=ReplayMemory(recording), config=config or SolveConfig(),
                     model_names={r: f"replay of run {recording.run_id}" for r in AGENT_ROLES},
                     structured=structured or recording.structured_method(), repair_rounds=repair_rounds)


@dataclass(frozen=True)
class Replayed:
    """A finished replay: its trajectory, and the id of its root run (its trace, when traced)."""

    trajectory: Trajectory
    run_id: str


class _RootRun(BaseCallbackHandler):
    """Catches the id of the replay's root run, so the caller can find the replay's trace."""

    def __init__(self) -> None:
        self.run_id: UUID | None = None

    def on_chain_start(self, serialized: dict[str, Any], inputs: dict[str, Any], *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None and self.run_id is None:
            self.run_id = run_id


async def replay(recording: Recording, sandbox: Sandbox, *, config: SolveConfig | None = None,
                 callbacks: list[BaseCallbackHandler] | None = None, structured: Structured | None = None,
                 repair_rounds: int = 1) -> Replayed:
    """Run the recorded task again. Where the graph asks for what was not recorded, ``ReplayMismatch``
    is raised, its message naming the replay's run (whose trace shows how far it got)."""
    deps = replay_deps(recording, sandbox, config=config, structured=structured, repair_rounds=repair_rounds)
    return await run_replay(recording, deps, callbacks)


async def run_replay(recording: Recording, deps: SolveDeps,
                     callbacks: list[BaseCallbackHandler] | None = None) -> Replayed:
    """``replay`` with its deps already built (``open_deps(settings, "replay", recording=...)``)."""
    root = _RootRun()
    try:
        trajectory = await solve(recording.task, deps, thread_id=f"replay-{uuid.uuid4().hex[:12]}",
                                 callbacks=[*(callbacks or []), root])
    except ReplayMismatch as e:
        where = f" (the replay so far: `codestill traces show {str(root.run_id)[-8:]}`)" if root.run_id else ""
        raise ReplayMismatch(f"{e}{where}") from None
    return Replayed(trajectory, str(root.run_id))
