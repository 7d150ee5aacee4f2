"""Scripted chat models, bank tasks, sandbox results, and the simulated teacher's role logic run
in-process on an agent's messages (what it would answer over HTTP, without a server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import Field

from codestill.data import BankProblem, load_bank
from codestill.schemas import (
    SCHEMA_MARKER,
    ExecResult,
    ExecStatus,
    MemoryHit,
    StoredModule,
    Task,
    TestOutcome,
    TestResult,
)
from codestill.sim._app import _ROLE
from codestill.sim._bank import ProblemIndex
from codestill.sim._roles import Ask, default_handlers

R = TypeVar("R")


class Scripted(FakeMessagesListChatModel):
    """Replies in order, and records every list of messages it was sent."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)

    @property
    def system(self) -> str:
        return str(self.seen[0][0].content)

    @property
    def user(self) -> str:
        """The agent's own user message (the schema request ``ask`` appends comes after it)."""
        return str(self.seen[0][1].content)

    @property
    def everything(self) -> str:
        return "\n".join(str(m.content) for msgs in self.seen for m in msgs)


def scripted(*replies: str | dict[str, Any]) -> Scripted:
    return Scripted(responses=[AIMessage(r if isinstance(r, str) else json.dumps(r)) for r in replies])


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def exec_result(status: ExecStatus = "passed", *tests: tuple[str, TestOutcome, str], message: str = "",
                stderr: str = "") -> ExecResult:
    """An ExecResult with (name, outcome, message) test records."""
    return ExecResult(run_id=f"run-{status}", status=status, message=message, stderr=stderr,
                      tests=tuple(TestResult(name=n, outcome=o, message=m) for n, o, m in tests))


def hit(name: str, code: str, *, score: float = 0.8, spec_name: str | None = None,
        id: str | None = None) -> MemoryHit:
    module = StoredModule(id=id or f"id-{name}", name=name, signature=f"def {name}(...)",
                          code=code, description=f"what {name} does", verified=True,
                          created_at=datetime(2024, 1, 1, tzinfo=UTC))
    return MemoryHit(spec_name=spec_name or name, module=module, score=score)


@pytest.fixture(scope="session")
def bank() -> dict[str, BankProblem]:
    return {p.id: p for p in load_bank()}


@pytest.fixture(scope="session")
def index(bank) -> ProblemIndex:
    return ProblemIndex(list(bank.values()))


@pytest.fixture
def mbpp(bank) -> Task:
    """mbpp/2, similar_elements: visible assert tests."""
    return bank["mbpp/2"].to_task()


@pytest.fixture
def humaneval(bank) -> Task:
    """humaneval/0, has_close_elements: visible check(candidate) tests."""
    return bank["humaneval/0"].to_task()


@pytest.fixture
def hidden(bank) -> Task:
    """humaneval/0 with its tests hidden from the agents."""
    return bank["humaneval/0"].to_task().model_copy(update={"hidden_tests": True})


def sim_answer(index: ProblemIndex, messages: list[BaseMessage], *, bug_rate: float = 0.0) -> tuple[dict, Ask]:
    """What the simulated teacher answers to these messages, sent as a tool call (no schema message)."""
    m = _ROLE.match(str(messages[0].content))
    role = m.group(1) if m else "unknown"
    users = [str(x.content) for x in messages if isinstance(x, HumanMessage) and SCHEMA_MARKER not in x.content]
    text = "\n".join(users)
    ask = Ask(role=role, problem=index.match(text), user_text=text, last_user=users[-1], choice=0, style=0,
              seed=0, bug_rate=bug_rate, structured=True)
    return default_handlers()[role](ask), ask
