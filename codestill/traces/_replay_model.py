"""A chat model that answers from a recording: the same replies, token counts and failures as the run
it replays, with no model server. One per agent role, all sharing one ``Recording``.

A request is matched by its node (LangGraph's ``langgraph_node``, from the run manager's metadata)
and its messages; a request the recording lacks raises ``ReplayMismatch`` out of the graph. A call
that failed in the recording fails again as a ``ModelCallError``, the class
``codestill.structured.ask`` records as a failed step, so the graph takes the same route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from codestill.errors import ModelCallError
from codestill.traces._codec import message_dict
from codestill.traces._recording import RecordedCall, Recording

PROVIDER = "codestill.replay"


class RecordedCallError(ModelCallError):
    """A call that ended in an error in the recorded run; its message is the recorded error."""


class ReplayChatModel(BaseChatModel):
    """Answers ``role``'s requests from ``recording`` (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    recording: Recording
    role: str
    model_name: str = "replay"

    @property
    def _llm_type(self) -> str:
        return "codestill-replay"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "role": self.role, "recording": self.recording.run_id}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider=PROVIDER, ls_model_name=self.model_name, ls_model_type="chat")

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: str | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Accepted and ignored: the recorded reply already is whatever the tools made the model say."""
        return self.bind(**kwargs)

    def _answer(self, messages: list[BaseMessage], run_manager: Any) -> ChatResult:
        metadata = getattr(run_manager, "metadata", None) or {}
        node = metadata.get("langgraph_node")
        call = self.recording.take(None if node is None else str(node), [message_dict(m) for m in messages],
                                   self.role)
        return replayed_result(call)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._answer(messages, run_manager)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._answer(messages, run_manager)


def replayed_result(call: RecordedCall) -> ChatResult:
    """The recorded reply as a ``ChatResult``, usage on the first generation; a recorded error is raised."""
    if call.error is not None:
        raise RecordedCallError(f"(recorded) {call.error}")
    prompt, completion = call.prompt_tokens or 0, call.completion_tokens or 0
    usage = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
    gens = []
    for i, g in enumerate(call.generations):
        content = g.get("content", g.get("text", ""))
        message = AIMessage(content=content if isinstance(content, str | list) else str(content),
                            tool_calls=list(g.get("tool_calls") or []),
                            invalid_tool_calls=list(g.get("invalid_tool_calls") or []),
                            response_metadata=dict(g.get("response_metadata") or {}),
                            usage_metadata=usage if i == 0 else None)  # type: ignore[arg-type]
        gens.append(ChatGeneration(message=message))
    if not gens:
        gens.append(ChatGeneration(message=AIMessage("", usage_metadata=usage)))  # type: ignore[arg-type]
    return ChatResult(generations=gens)
