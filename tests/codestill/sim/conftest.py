"""Simulator servers for the tests: real processes (``serve_subprocess``), one per config, shared
by the whole session and stopped at its end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from codestill.data import BankProblem, load_bank
from codestill.sim import SimConfig, serve_subprocess

MODEL = "codestill-sim"


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[..., str]]:
    """serve(**config) -> base URL of a running simulator with that config (started once per config)."""
    urls: dict[SimConfig, str] = {}
    with ExitStack() as stack:
        def start(**settings) -> str:
            config = SimConfig(**settings)
            if config not in urls:
                urls[config] = stack.enter_context(serve_subprocess(config))
            return urls[config]

        yield start


@pytest.fixture(scope="session")
def url(serve) -> str:
    return serve()


@pytest.fixture(scope="session")
def client(url) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def bank() -> dict[str, BankProblem]:
    return {p.id: p for p in load_bank()}


def texts(role: str, problem: BankProblem | None, extra: str = "", instruction: str | None = None
          ) -> tuple[str, str]:
    """What an agent sends: its system prompt, then the task (and whatever else) as the user."""
    if instruction is None:
        assert problem is not None, "a problem or an instruction"
        instruction = problem.instruction
    entry = f"\nThe function must be named {problem.entry_point}." if problem is not None else ""
    return f"You are the codestill {role}. Be precise.", f"Task:\n{instruction}{entry}{extra}"


def messages(role: str, problem: BankProblem | None, extra: str = "", instruction: str | None = None
             ) -> list[ChatCompletionMessageParam]:
    """``texts`` as chat messages."""
    system, user = texts(role, problem, extra, instruction)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def tool_arguments(message: ChatCompletionMessage) -> str:
    """The arguments of the first tool call in ``message``, which must be a function call."""
    calls = message.tool_calls
    assert calls and isinstance(calls[0], ChatCompletionMessageFunctionToolCall), message
    return calls[0].function.arguments
