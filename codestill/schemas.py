"""Records that cross package boundaries, as pydantic v2 models.

Every record written to disk on its own (a JSONL line, a JSON file) carries ``schema_version``;
``load_record`` / ``read_jsonl`` refuse another version with one clear message (see ``codestill.records``).

    Task -> Plan* -> ModuleSpec* -> Module* (+ MemoryHit*) -> Attempt* (code, TestSuite, ExecResult,
    Critique) -> Trajectory (verdict, reason, usage) -> SFTRecord* (chat messages, code | plan)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

ExecStatus = Literal["passed", "failed", "error", "timeout", "oom", "killed", "infra_error"]
TestOutcome = Literal["passed", "failed", "error", "not_run"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Versioned(_Record):
    """A record that is written to disk on its own, so it says which schema it follows."""

    schema_version: int = SCHEMA_VERSION


class Limits(_Record):
    """Resource limits of one execution. Time-outs are judged on CPU time; wall is a backstop."""

    cpu_s: float = Field(default=4.0, gt=0, description="CPU seconds of the program's process (RLIMIT_CPU).")
    wall_s: float | None = Field(default=None, gt=0, description="Wall-clock backstop; default 2*cpu_s + 2.")
    output_bytes: int = Field(default=128 << 20, gt=0, description="stdout+stderr past this kill the program.")
    capture_bytes: int = Field(default=64 << 10, gt=0, description="Tail of stdout / stderr kept in the result.")
    file_bytes: int = Field(default=32 << 20, gt=0, description="Largest file the program may write (RLIMIT_FSIZE).")

    @property
    def wall_limit_s(self) -> float:
        return self.wall_s if self.wall_s is not None else 2 * self.cpu_s + 2


class IOCase(_Record):
    input: str
    output: str


def io_text(cases: Sequence[IOCase]) -> str:
    """Cases as "Input:" and "Output:" fenced pairs: how the tester writes them (``agents._answers.IOTestsAnswer``
    reads them back, the same cases, line ends aside) and how an exported response shows them."""
    def block(text: str) -> str:
        ticks = "```"
        while ticks in text:
            ticks += "`"
        body = text[:-1] if text.endswith("\n") else text
        return f"{ticks}\n{body}\n{ticks}" if body else f"{ticks}\n{ticks}"
    return "\n\n".join(f"Input:\n{block(c.input)}\nOutput:\n{block(c.output)}" for c in cases) + "\n"


class TestSuite(_Record):
    """What to run against a program.

    ``asserts``: Python test code (MBPP ``assert`` lines, or HumanEval's ``def check(candidate)``
    with ``entry_point`` naming the function to pass it). ``io``: stdin/stdout cases (APPS style).
    """

    __test__ = False  # not a pytest class
    kind: Literal["asserts", "io"] = "asserts"
    code: str = ""
    entry_point: str | None = None
    cases: tuple[IOCase, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TestSuite:
        if self.kind == "io" and not self.cases:
            raise ValueError("an io test suite needs at least one case")
        return self


class TestResult(_Record):
    __test__ = False  # not a pytest class
    name: str
    outcome: TestOutcome
    message: str = ""
    duration_s: float = 0.0


class ExecResult(_Versioned):
    """The sandbox's verdict on one program. Failures of the program are results, not exceptions."""

    run_id: str
    status: ExecStatus
    message: str = ""
    tests: tuple[TestResult, ...] = ()
    stdout: str = ""
    stderr: str = ""
    stdout_truncated_bytes: int = 0
    stderr_truncated_bytes: int = 0
    exit_code: int | None = None
    signal: str | None = None
    cpu_s: float = 0.0
    wall_s: float = 0.0
    attempts: int = 1
    limits: Limits = Limits()

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def n_passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    def feedback(self, max_tests: int = 10) -> str:
        """The result as agents show it to a model (the critic, a repair request).

        The first line is always ``status: <status>``: the simulated teacher reads it, and so
        can a human skimming a prompt in the trace viewer.
        """
        lines = [f"status: {self.status}", f"tests: {self.n_passed}/{len(self.tests)} passed"]
        if self.message:
            lines.append(f"message: {self.message}")
        bad = [t for t in self.tests if t.outcome != "passed"]
        lines += [f"- {t.name}: {t.outcome}: {t.message}".rstrip(": ") for t in bad[:max_tests]]
        if len(bad) > max_tests:
            lines.append(f"- ... and {len(bad) - max_tests} more")
        if self.stderr.strip() and not self.passed:
            lines += ["stderr (tail):", self.stderr[-1500:]]
        return "\n".join(lines)


# ---- the agent records ----------------------------------------------------------------------

# Prompt conventions shared by the agents and the simulated teacher that reads their requests:
# an agent's system prompt starts with "You are the codestill <role>."; a prompt-mode structured
# request ends with SCHEMA_MARKER and an example answer in a ```json fence (whose values say what goes
# where; a JSON Schema there is read as one too).
SCHEMA_MARKER = "Reply with one JSON object of this form (each value says what goes there):"
# A tester asked again gets, after the task and the solution, a section headed ASKED_AGAIN saying why
# (its tests did not run, were refused, let mutants of the solution live, or failed against the
# solution: then the why starts with DISPUTE and lists each failing assert's first line and what the
# solution returned), then PREVIOUS_TESTS with its last tests in an untagged fence.
ASKED_AGAIN = "## Why you are asked again"
PREVIOUS_TESTS = "## Your previous tests"
DISPUTE = "Some of your asserts failed against the solution."
Role = Literal["planner", "decomposer", "coder", "tester", "critic", "evolver", "conceptor"]
ROLES: tuple[Role, ...] = ("planner", "decomposer", "coder", "tester", "critic", "evolver", "conceptor")


class Seed(_Versioned):
    """A seed function mined from real code (SelfCodeAlign): self-contained (the imports it needs come
    first in ``code``), with where it was found and under which licence, where known."""

    id: str = Field(min_length=1, description="e.g. 'stdlib:textwrap.dedent'.")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    signature: str = Field(description="The def line, without its colon.")
    docstring: str = ""
    code: str = Field(min_length=1)
    language: str = "python"
    module: str = ""
    path: str = Field(default="", description="The file it was mined from.")
    lineno: int = Field(default=0, ge=0)
    licence: str | None = Field(default=None, description="SPDX id or licence name, where known.")


class Origin(_Record):
    """How a generated instruction came about: its seed, evolution round and heuristic, and for
    SelfCodeAlign the concepts, category and difficulty it was written from."""

    seed_id: str | None = None
    parent_id: str | None = None
    round: int = Field(default=0, ge=0, description="Evolution round; 0 for an original.")
    heuristic: str | None = None
    concepts: tuple[str, ...] = ()
    category: str | None = None
    difficulty: str | None = None


class Task(_Versioned):
    """One coding instruction. ``lineage`` lists the ids it was derived from (evolution, seeds)."""

    id: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    entry_point: str | None = Field(default=None, description="Name of the function the tests call.")
    signature: str | None = Field(default=None, description="e.g. 'def f(xs: list[int]) -> int'.")
    tests: TestSuite | None = Field(default=None, description="Tests given with the task, if any.")
    hidden_tests: bool = Field(default=False, description="The given tests are run, but never shown to the agents.")
    source: str = Field(default="user", description="Where it came from: mbpp, humaneval, evol, selfalign, user...")
    lineage: tuple[str, ...] = ()
    origin: Origin | None = Field(default=None, description="Seed, round and heuristic of a generated instruction.")


class Plan(_Record):
    """A solution plan: numbered steps in words. ``backward``: written from a verified solution."""

    steps: tuple[str, ...] = Field(min_length=1)
    rationale: str = ""
    kind: Literal["forward", "backward"] = "forward"


class ModuleSpec(_Record):
    """One function module a solution is decomposed into (AMR-Evol)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    signature: str = Field(description="The def line, e.g. 'def is_prime(n: int) -> bool'.")
    description: str = ""


class Verification(_Record):
    """How a module was verified: the sandbox run that passed it and the tests it passed."""

    run_id: str | None = Field(default=None, description="ExecResult.run_id of the passing sandbox run.")
    tests_passed: int = Field(default=0, ge=0)
    tests_total: int = Field(default=0, ge=0)


class Module(_Versioned):
    """A module with code; ``verified`` once a solution using it passed its tests."""

    spec: ModuleSpec
    code: str
    verified: bool = False
    task_id: str | None = Field(default=None, description="The task whose accepted solution it came from.")
    tests: TestSuite | None = Field(default=None, description="The unit tests it passed.")
    verification: Verification | None = None
    trajectory_id: str | None = None
    language: Literal["python"] = "python"


class StoredModule(_Versioned):
    """A module as the function-module memory keeps it (``memory/``), and as ``memory export`` writes it.

    ``id`` is derived from the normalised-AST hash of ``code``, so the same code always has the same id.
    ``times_added`` counts the adds merged into this record (exact and near duplicates included).
    """

    id: str
    name: str
    signature: str
    docstring: str = ""
    description: str = ""
    code: str
    tests: TestSuite | None = None
    language: Literal["python"] = "python"
    verified: bool = False
    verification: Verification | None = None
    task_id: str | None = None
    trajectory_id: str | None = None
    times_added: int = Field(default=1, ge=0)
    times_retrieved: int = Field(default=0, ge=0)
    times_reused: int = Field(default=0, ge=0)
    created_at: datetime

    def to_module(self) -> Module:
        spec = ModuleSpec(name=self.name, signature=self.signature, description=self.description)
        return Module(spec=spec, code=self.code, verified=self.verified, task_id=self.task_id, tests=self.tests,
                      verification=self.verification, trajectory_id=self.trajectory_id, language=self.language)


class MemoryHit(_Record):
    """A module the memory returned for a spec, with its similarity score in [0, 1] (higher is closer)."""

    spec_name: str
    module: StoredModule
    score: float = Field(ge=0.0, le=1.0)


RejectReason = Literal["unsolvable", "ambiguous_instruction", "tests_wrong", "repeated_failure", "unsafe",
                       "budget_exceeded", "model_failure"]
REJECT_REASONS: tuple[RejectReason, ...] = ("unsolvable", "ambiguous_instruction", "tests_wrong",
                                            "repeated_failure", "unsafe", "budget_exceeded", "model_failure")


class Critique(_Record):
    """The critic's judgement of one attempt. ``reason`` (from a fixed taxonomy) goes with ``reject``;
    ``weak_tests`` with a repair that asks the tester, not the coder, for stronger tests."""

    verdict: Literal["accept", "repair", "replan", "reject"]
    issues: tuple[str, ...] = ()
    suggestion: str = ""
    reason: RejectReason | None = None
    weak_tests: bool = False


def _merged(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    if not b:
        return a
    if not a:
        return b
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


class Usage(_Record):
    """Tokens and time spent on model calls."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    replies: dict[str, int] = Field(default_factory=dict, description="Replies per agent role.")
    cut_off: dict[str, int] = Field(default_factory=dict, description="Replies per role that ended at the token "
                                    "limit (finish_reason=length).")
    unreadable: dict[str, int] = Field(default_factory=dict, description="Replies per role that no parser could "
                                       "read (each one was re-asked or failed the step).")

    def __add__(self, other: Usage) -> Usage:
        return Usage(calls=self.calls + other.calls, prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens,
                     latency_s=self.latency_s + other.latency_s, replies=_merged(self.replies, other.replies),
                     cut_off=_merged(self.cut_off, other.cut_off), unreadable=_merged(self.unreadable, other.unreadable))

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Attempt(_Record):
    """One solution tried: its code, the tests it ran against, the sandbox's result, the critique."""

    round: int = Field(default=0, ge=0, description="0 for the first try, +1 per repair.")
    plan_index: int | None = None
    code: str
    tests: TestSuite | None = None
    result: ExecResult | None = None
    critique: Critique | None = None
    mutation_score: float | None = Field(default=None, ge=0, le=1, description="Share of the code's mutants its tests "
                                         "killed (graphs/_adequacy.py); None: not judged.")
    explanation: str = Field(default="", description="What the coder said about this code (the prose of the same reply).")
    hidden_result: ExecResult | None = Field(default=None, description="The run of the task's hidden tests, if it has any.")
    sample: int = Field(default=0, ge=0, description="Which of the plan's independent samples (solve.samples) wrote it.")


class Trajectory(_Versioned):
    """Everything that happened to one task, accepted or not (rejects keep their reason)."""

    id: str
    task: Task
    plans: tuple[Plan, ...] = ()
    modules: tuple[Module, ...] = ()
    memory_hits: tuple[MemoryHit, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    verdict: Literal["accepted", "rejected", "failed"]
    reason: str = Field(description="Why this verdict, in one line.")
    final_code: str | None = None
    explanation: str = Field(default="", description="The accepted code's explanation: the prose of the reply that wrote "
                             "it, or of the coder asked to explain it afterwards (graphs/solve.py ``explain``).")
    mutation_score: float | None = Field(default=None, ge=0, le=1, description="The accepted attempt's: the share of "
                                         "its code's mutants its tests killed; None: not judged or not accepted.")
    usage: Usage = Usage()
    duration_s: float = 0.0
    model: str = Field(default="", description="The chat model spec that produced it (never a key).")
    models: dict[str, str] = Field(default_factory=dict, description="The chat model spec of each agent role.")
    selection_seed: int | None = Field(default=None, description="Seeded the random pick among the branches that passed "
                                       "(solve.selection_seed); None: there was no choice to make.")
    codestill_version: str = Field(default="", description="The codestill release that produced it.")
    failures: tuple[str, ...] = Field(default=(), description="Agent replies that could not be read, by stage.")
    reused_modules: tuple[str, ...] = Field(default=(), description="Memory ids the accepted solution reused or adapted.")
    added_modules: tuple[str, ...] = Field(default=(), description="Memory ids that now hold its verified modules.")

    @property
    def critiques(self) -> tuple[Critique, ...]:
        return tuple(a.critique for a in self.attempts if a.critique is not None)


class ChatMessage(_Record):
    role: Literal["system", "user", "assistant"]
    content: str


class Evidence(_Record):
    """What an exported answer's verification rests on: the sandbox runs that passed it, how many tests,
    how many of its mutants those tests killed, the hidden tests, and who taught it."""

    sandbox_runs: tuple[str, ...] = Field(default=(), description="ExecResult.run_id of the passing runs (visible, hidden).")
    tests_passed: int = Field(default=0, ge=0, description="Visible tests the code passed.")
    tests_total: int = Field(default=0, ge=0)
    test_kind: Literal["asserts", "io"] = "asserts"
    mutation_score: float | None = Field(default=None, ge=0, le=1, description="Share of the code's mutants its tests "
                                         "killed; None: not judged.")
    hidden_tests: Literal["none", "passed", "failed"] = Field(
        default="none", description="Whether the task's hidden tests (never shown to the agents) ran, and how they ended.")
    hidden_passed: int = Field(default=0, ge=0)
    hidden_total: int = Field(default=0, ge=0)
    teachers: dict[str, str] = Field(default_factory=dict, description="The chat model spec of each agent role.")
    codestill_version: str = ""


class Provenance(_Record):
    """Where an SFT record came from, so any sample can be traced back to its run and task."""

    task_id: str
    trajectory_id: str
    source: str = "user"
    lineage: tuple[str, ...] = ()
    model: str = ""
    run_id: str | None = None
    category: str | None = Field(default=None, description="The task's category (function, class, program), where known.")
    evidence: Evidence | None = Field(default=None, description="What the answer's verification rests on (code records; "
                                      "a plan record: that of the code its plan led to).")


SFTVariant = Literal["code:final", "code:modular", "code:plan-conditioned", "plan:forward", "plan:backward",
                     "code:unverified"]
# code:unverified: a teacher's first answer with no gate passed (``codestill export --unverified``, the
# direct-distillation baseline); never in a default export.
SFT_VARIANTS: tuple[SFTVariant, ...] = ("code:final", "code:modular", "code:plan-conditioned", "plan:forward",
                                        "plan:backward", "code:unverified")


class SFTRecord(_Versioned):
    """One training sample: chat ``messages`` ending with the assistant's answer.

    ``tags`` say which kind of answer it is, so a trainer can weight or select them: one of
    ``SFT_VARIANTS`` (``plan:backward`` = a plan written from the verified solution, ``code:modular`` =
    the answer in its modular form), plus any free-form tags. Empty in files written before tags existed.
    """

    id: str
    task: Literal["code", "plan"]
    messages: tuple[ChatMessage, ...] = Field(min_length=2)
    provenance: Provenance
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ends_with_answer(self) -> SFTRecord:
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message of an SFT record must be the assistant's")
        return self
