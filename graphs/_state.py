"""The solve graph's state: small records; code, tests and sandbox results only by artefact key.

Reducers: lists that several branches (``Send``) write at once are appended to (``operator.add``);
``Usage`` adds up. Everything else is written by one node at a time.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal, Required, TypedDict

from pydantic import BaseModel, ConfigDict

from codestill.schemas import Critique, MemoryHit, ModuleSpec, Plan, Task, Trajectory, Usage

Outcome = Literal["accepted", "rejected", "replan"]


class _Small(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttemptRef(_Small):
    """One attempt of a branch. ``*_key``: artefact keys (``SolveDeps.artefacts``)."""

    plan_round: int
    plan_index: int
    round: int
    code_key: str | None  # None: the coder's reply could not be read
    sample: int = 0  # which of the plan's independent samples (solve.samples)
    explanation: str = ""  # the prose of the coder's reply that wrote the code
    tests_key: str | None = None
    result_key: str | None = None
    hidden_key: str | None = None
    passed: int = 0  # tests passed, visible and hidden
    total: int = 0
    critique: Critique | None = None
    mutation_score: float | None = None


class BranchResult(_Small):
    """How one plan's branch ended."""

    plan_round: int
    plan_index: int
    outcome: Outcome
    reason: str
    sample: int = 0
    explanation: str = ""
    critique: Critique | None = None
    code_key: str | None = None
    tests_key: str | None = None
    result_key: str | None = None
    passed: int = 0
    total: int = 0
    repairs: int = 0
    code_len: int = 0
    mutation_score: float | None = None  # of the accepted attempt's suite (graphs._adequacy)
    specs: tuple[ModuleSpec, ...] = ()
    descriptions: dict[str, str] = {}
    elapsed_s: float = 0.0


def _slower(a: float, b: float) -> float:
    return max(a, b)


class SolveState(TypedDict, total=False):
    task: Required[Task]  # the graph's input; everything else is written by its nodes
    plan_round: int  # 0, then +1 per replan
    plans: Annotated[list[Plan], operator.add]  # every plan of every round, in order
    round_plans: list[int]  # indexes into plans of the current round
    regenerate: bool  # a person asked for other plans (interactive sessions)
    plan_feedback: str | None  # why the last round failed (shown to the planner on a replan)
    branches: Annotated[list[BranchResult], operator.add]
    attempts: Annotated[list[AttemptRef], operator.add]
    hits: Annotated[list[MemoryHit], operator.add]
    failures: Annotated[list[str], operator.add]  # agent replies that could not be read, with the stage
    usage: Annotated[Usage, operator.add]
    spent_s: Annotated[float, operator.add]  # work time (branches count once, by the slowest)
    tail_s: Annotated[float, _slower]  # backward plan and memory commit run side by side: the slower counts
    chosen: BranchResult | None
    selection_seed: int | None  # seeded the pick among passing branches; None: no choice was made
    verdict: Literal["accepted", "rejected", "failed"]
    reason: str
    backward: Plan | None
    explanation: str | None  # the accepted code's, when the coder was asked for it afterwards (``explain``)
    reused: list[str]  # memory ids the accepted solution reused
    added: list[str]  # memory ids of the modules it put in the memory
    trajectory: Trajectory


class BranchState(TypedDict, total=False):
    # the branch's input (``solve.fan_out``'s Send); the rest is written by the branch's nodes
    task: Required[Task]
    plan: Required[Plan]
    plan_round: Required[int]
    plan_index: Required[int]
    sample: Required[int]  # 0, 1, ... solve.samples - 1: independent branches of one plan
    tokens_left: Required[int]
    seconds_left: Required[float]
    started: Required[float]  # time.time() when the branch started
    draft_key: str | None
    draft_explanation: str
    specs: list[ModuleSpec]
    descriptions: dict[str, str]
    branch_hits: list[MemoryHit]
    code_key: str | None
    code_len: int
    explanation: str
    tests_key: str | None
    hidden_key: str | None
    result_key: str | None
    hidden_result_key: str | None
    passed: int
    total: int
    repairs: int
    feedback: str | None  # for the coder: the critique and the failures, or None on the first round
    test_feedback: str | None  # for the tester: why it is asked again
    written_key: str | None  # the tester's own tests (without the task's), shown to it when asked again
    blind_key: str | None  # the last usable blind samples' tests (graphs._verify.merge_suites)
    refused: str | None  # why the newest suite was refused before it ran (graphs._verify)
    test_rounds: int  # times the tester was asked again
    disputed: list[str]  # the tester's asserts it was already asked to re-derive
    mutation_score: float | None
    critique: Critique | None
    done: BranchResult | None
    # written to the parent when the branch ends (the subgraph's output schema)
    branches: Annotated[list[BranchResult], operator.add]
    attempts: Annotated[list[AttemptRef], operator.add]
    hits: Annotated[list[MemoryHit], operator.add]
    failures: Annotated[list[str], operator.add]
    usage: Annotated[Usage, operator.add]


class BranchOutput(TypedDict, total=False):
    branches: Annotated[list[BranchResult], operator.add]
    attempts: Annotated[list[AttemptRef], operator.add]
    hits: Annotated[list[MemoryHit], operator.add]
    failures: Annotated[list[str], operator.add]
    usage: Annotated[Usage, operator.add]
