"""The solve graph on real parts (the Docker sandbox, an embedded Chroma memory) with scripted agents:
``RoleModel`` answers each role through a function of the request, so concurrent branches get the
answer that belongs to their own prompt."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from tests.memory.conftest import embedder  # noqa: F401  (the shared fixture)

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
