"""Scripted agents for the graphs: ``RoleModel`` answers each role through a function of the request, so
concurrent branches get the answer that belongs to their own prompt. ``shared_sandbox()``: the local
sandbox the solve graph's tests run on (with ``FakeMemory``: see test_solve.py's ``run``)."""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from codestill.config import SandboxConfig
from codestill.schemas import ExecResult, Limits, TestSuite
from tools.sandbox import LocalSandbox

_ROLE = re.compile(r"You are the codestill (\w+)\.")
Answer = Callable[[str, str], Any]  # (role, the whole request text) -> a dict (sent as JSON) or raw text


class RoleModel(BaseChatModel):
    """A chat model that answers with ``answer(role, text)``; records every (role, text) it saw."""

    answer: Any
    tokens: int = 0  # reported as the usage of every reply (split evenly between prompt and completion)
    seen: list[tuple[str, str]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "role-scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = "\n".join(str(m.content) for m in messages)
        m = _ROLE.search(str(messages[0].content))
        role = m.group(1) if m else "unknown"
        self.seen.append((role, text))
        out = self.answer(role, text)
        content = out if isinstance(out, str) else json.dumps(out)
        usage = {"input_tokens": self.tokens // 2, "output_tokens": self.tokens // 2, "total_tokens": self.tokens}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content, usage_metadata=usage))])

    def calls(self, role: str) -> int:
        return sum(r == role for r, _ in self.seen)


class _Relay:
    """A ``Sandbox`` whose runs go to a sandbox on another thread's event loop."""

    def __init__(self, sandbox: LocalSandbox, loop: asyncio.AbstractEventLoop) -> None:
        self.sandbox, self.loop = sandbox, loop

    async def run(self, program: str | bytes, tests: TestSuite | str, limits: Limits | None = None) -> ExecResult:
        done = asyncio.run_coroutine_threadsafe(self.sandbox.run(program, tests, limits), self.loop)
        return await asyncio.wrap_future(done)


_shared: list[_Relay] = []
_shared_lock = threading.Lock()


def shared_sandbox() -> _Relay:
    """One ``LocalSandbox`` (a pool of two) for every graph test of the session, on an event loop of its
    own (a daemon thread), started on first use: a pool started per test cost each 0.2-0.5 s. A test's
    graph runs on the test's own loop (``asyncio.run``) and its sandbox runs go through here; runs
    share nothing but the pool's processes (each run is a fresh fork with a wiped work folder)."""
    with _shared_lock:
        if not _shared:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="graph-tests-sandbox", daemon=True).start()
            sandbox = LocalSandbox(SandboxConfig(pool_size=2))
            asyncio.run_coroutine_threadsafe(sandbox.start(), loop).result()
            atexit.register(lambda: asyncio.run_coroutine_threadsafe(sandbox.close(), loop).result(30))
            _shared.append(_Relay(sandbox, loop))
        return _shared[0]
