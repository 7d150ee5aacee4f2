"""LangChain's ChatOpenAI, with the provider's errors turned into codestill's at the call.

Everything above ``codestill.llm`` (the structured replies, the agents, the graphs, evaluation) catches
``ModelCallError`` and the ``LLMError`` family, never ``openai``'s classes, so no module outside the
model floor imports the OpenAI SDK, and a graph loads no HTTP client of a provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from codestill.errors import CodestillError, ModelCallError

__all__ = ["CodestillChatOpenAI", "translate"]


def translate(error: openai.OpenAIError, spec: str) -> CodestillError:
    """A fatal ``LLMError`` where every later call would fail the same way (``llm.explain``), else one
    call's ``ModelCallError``."""
    from codestill.llm import explain

    fatal = explain(error, spec)
    if fatal is not None:
        return fatal
    status = error.status_code if isinstance(error, openai.APIStatusError) else None
    detail = str(error)
    if isinstance(error, openai.APIStatusError):
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        detail = f"{status}: {' '.join(str(message or error.message).split())[:240]}"
    return ModelCallError(f"{type(error).__name__}: {error}", status=status, detail=detail,
                          timed_out=isinstance(error, openai.APITimeoutError))


class CodestillChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose calls raise ``ModelCallError`` / ``LLMError`` (see ``translate``)."""

    spec_label: str = ""

    def _label(self) -> str:
        return self.spec_label or self.model_name

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except openai.OpenAIError as e:
            raise translate(e, self._label()) from e

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except openai.OpenAIError as e:
            raise translate(e, self._label()) from e

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except openai.OpenAIError as e:
            raise translate(e, self._label()) from e

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except openai.OpenAIError as e:
            raise translate(e, self._label()) from e
