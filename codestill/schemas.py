"""Records that cross package boundaries, as pydantic v2 models.

Every record written to disk carries ``schema_version``; see ``SCHEMA_VERSION``.
The spine issue adds the agent records (Task, Plan, Trajectory, ...) here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

ExecStatus = Literal["passed", "failed", "error", "timeout", "oom", "killed", "infra_error"]
TestOutcome = Literal["passed", "failed", "error", "not_run"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Record):
    """Resource limits of one execution. Time-outs are judged on CPU time; wall is a backstop."""

    cpu_s: float = Field(4.0, gt=0, description="CPU seconds of the program's process (RLIMIT_CPU).")
    wall_s: float | None = Field(None, gt=0, description="Wall-clock backstop; default 2*cpu_s + 2.")
    output_bytes: int = Field(128 << 20, gt=0, description="stdout+stderr past this kill the program.")
    capture_bytes: int = Field(64 << 10, gt=0, description="Tail of stdout / stderr kept in the result.")
    file_bytes: int = Field(32 << 20, gt=0, description="Largest file the program may write (RLIMIT_FSIZE).")

    @property
    def wall_limit_s(self) -> float:
        return self.wall_s if self.wall_s is not None else 2 * self.cpu_s + 2


class IOCase(_Record):
    input: str
    output: str


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


class ExecResult(_Record):
    """The sandbox's verdict on one program. Failures of the program are results, not exceptions."""

    schema_version: int = SCHEMA_VERSION
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
