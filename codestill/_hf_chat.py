"""LangChain's ChatHuggingFace over a local pipeline, made usable from async agents."""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables.config import run_in_executor
from langchain_huggingface import ChatHuggingFace
from pydantic import PrivateAttr


class LocalChatHuggingFace(ChatHuggingFace):
    """ChatHuggingFace refuses ``ainvoke`` over a local pipeline; agents are async, so generation
    runs in a worker thread. One generation at a time per model: concurrent ``generate`` calls on
    one local model only fight over the same device (batched serving is what vLLM is for)."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        with self._lock:
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        sync_manager = run_manager.get_sync() if run_manager else None
        return await run_in_executor(None, self._generate, messages, stop, sync_manager, **kwargs)
