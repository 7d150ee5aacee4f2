"""A LangChain chat model over a local transformers model, for ``hf:<dir or hub id>`` specs.

Written for agents: async first, concurrent calls batched into one ``generate`` (``_hf_batch``), real
token counts in ``usage_metadata``, ``finish_reason`` ("length" when cut by the token or time limit)
in ``response_metadata``, and ``max_tokens`` / ``max_completion_tokens`` per call through ``bind``.
No tool calling: structured replies from ``hf:`` models go through the prompt method.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from codestill._hf_batch import Batcher, BatchStats, Output, Request

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


class LocalChatModel(BaseChatModel):
    """A loaded causal LM and its tokenizer; the chat template renders the conversation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    lm: Any = Field(repr=False, exclude=True)
    tokenizer: Any = Field(repr=False, exclude=True)
    max_tokens: int = 512
    temperature: float = 0.0
    timeout_s: float | None = None
    max_batch: int = 64

    _stats: BatchStats = PrivateAttr(default_factory=BatchStats)
    _batcher: Batcher | None = PrivateAttr(default=None)
    _start: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def load(cls, source: str, **settings: Any) -> LocalChatModel:
        """Load weights and tokenizer from a directory or hub id: CUDA with bfloat16 where it is
        supported, else float32 (CPU float16 is slow and bf16 matmuls are not faster there)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cuda = torch.cuda.is_available()
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(source)
        if not tokenizer.chat_template:
            raise ValueError("the tokenizer has no chat template (an instruct or chat model has one)")
        device = "cuda" if cuda else "cpu"
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype).to(device).eval()  # pyright: ignore[reportArgumentType]  # transformers types .to through functools.wraps: unbound, self first
        return cls(model_name=source, lm=lm, tokenizer=tokenizer, **settings)

    @property
    def stats(self) -> BatchStats:
        return self._stats

    @property
    def _llm_type(self) -> str:
        return "codestill-hf-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def close(self) -> None:
        """Stop the generation thread after what it holds (a daemon: needed only to free it early)."""
        with self._start:
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None

    async def aclose(self) -> None:
        self.close()

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        prompt, request = self._request(messages, kwargs)
        return self._result(prompt, request.future.result(), stop or kwargs.get("stop"))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        prompt, request = self._request(messages, kwargs)
        return self._result(prompt, await asyncio.wrap_future(request.future), stop or kwargs.get("stop"))

    def _request(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> tuple[list[int], Request]:
        conversation = [{"role": m.role if isinstance(m, ChatMessage) else _ROLES.get(m.type, "user"),
                         "content": str(m.text)} for m in messages]
        text = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens") or self.max_tokens
        temperature = kwargs.get("temperature", self.temperature)
        request = Request(list(ids), int(limit), float(temperature))
        self._worker().submit(request)
        return ids, request

    def _worker(self) -> Batcher:
        with self._start:
            if self._batcher is None:
                eos = self.lm.generation_config.eos_token_id
                eos_ids = {*(eos if isinstance(eos, list) else [eos] if eos is not None else []),
                           self.tokenizer.eos_token_id} - {None}
                pad = self.tokenizer.pad_token_id
                self._batcher = Batcher(self.lm, eos_ids, next(iter(eos_ids)) if pad is None else pad,
                                        max_batch=self.max_batch, max_time=self.timeout_s, stats=self._stats)
            return self._batcher

    def _result(self, prompt: list[int], out: Output, stop: list[str] | None) -> ChatResult:
        text = self.tokenizer.decode(out.ids, skip_special_tokens=True)
        finish = out.finish
        cut = min((i for i in (text.find(s) for s in stop or []) if i >= 0), default=-1)
        if cut >= 0:
            text, finish = text[:cut], "stop"
        # Output tokens are the ones generated, EOS excluded (so they count the reply's own tokens).
        usage = {"input_tokens": len(prompt), "output_tokens": len(out.ids),
                 "total_tokens": len(prompt) + len(out.ids)}
        meta: dict[str, Any] = {"finish_reason": finish, "model_name": self.model_name}
        if out.timed_out:
            meta["timed_out"] = True
        message = AIMessage(text, usage_metadata=usage, response_metadata=meta)  # type: ignore[arg-type]
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish})],
            llm_output={"model_name": self.model_name, "token_usage": {
                "prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"],
                "total_tokens": usage["total_tokens"]}})
