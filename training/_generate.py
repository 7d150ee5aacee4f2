"""Samplers: what turns prompts into completions, behind one small protocol.

    openai:<model>[@<url>]   ChatSampler          any chat model of ``codestill.llm`` (OpenAI, vLLM or
                                                  sglang servers, the sim); n samples in one request
    hf:<id or dir>, <dir>    TransformersSampler  local ``generate`` in batches (greedy when n == 1)
                             VLLMSampler          the same checkpoints through vLLM's offline engine, used
                                                  only when vllm imports and CUDA is there

A sampler is *chat* (messages in, a reply to dig code out of) or *base* (a prompt to continue, e.g.
HumanEval's stub); ``TransformersSampler`` is chat when the tokenizer has a chat template. A failed
generation is a result (``Generation.error``), not an exception; what every later call would repeat
(unreachable server, bad key, unknown model) raises an ``LLMError`` with the fix.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from codestill.config import LLMConfig
from codestill.errors import BadModelSpec, UnknownModel

PromptStyle = Literal["auto", "chat", "base"]


@dataclass(frozen=True)
class GenRequest:
    """``n`` completions of one prompt. ``messages`` for chat samplers, ``prompt`` for base ones."""

    messages: tuple[tuple[str, str], ...]
    prompt: str
    n: int = 1
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    """One completion. ``transient``: the error may not recur (a server fault after the client's
    retries), so the evaluation leaves the sample unwritten for a rerun to try again, rather than
    scoring it as the model's failure (as it does a prompt that does not fit the model's context)."""

    text: str
    error: str | None = None
    transient: bool = False


class Sampler(Protocol):
    """``concurrent``: many ``generate`` calls may be in flight at once (a server); otherwise the
    evaluation hands it one batch at a time of about ``batch_size`` sequences (one local model)."""

    name: str
    chat: bool
    concurrent: bool
    batch_size: int

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]: ...

    async def aclose(self) -> None: ...


class ChatSampler:
    """A ``codestill.llm`` chat model; all requests at once, the client's pool bounds concurrency."""

    chat = True
    concurrent = True

    def __init__(self, spec: str, llm: LLMConfig, max_new_tokens: int) -> None:
        from codestill.llm import make_chat_model

        self.name = spec
        self.batch_size = llm.max_concurrency
        self.model = make_chat_model(spec, llm.model_copy(update={"max_tokens": max_new_tokens}))
        self._gate = asyncio.Semaphore(llm.max_concurrency)

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, r: GenRequest) -> list[Generation]:
        import openai
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        from codestill.llm import explain

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        messages = [kinds[role](content) for role, content in r.messages]
        try:
            async with self._gate:
                # n choices in one request; the seed makes a resumed or repeated run ask the same.
                result = await self.model.agenerate([messages], n=r.n, temperature=r.temperature, seed=r.seed)
        except openai.OpenAIError as e:
            fatal = explain(e, self.name)
            if fatal is not None:
                raise fatal from None
            failed = f"model call failed after the client's retries: {type(e).__name__}: {e}"
            return [Generation("", failed, transient=True)] * r.n
        texts = [str(g.text) for g in result.generations[0]]
        missing = Generation("", "the server sent fewer choices than asked", transient=True)
        return [Generation(t) for t in texts] + [missing] * (r.n - len(texts))

    async def aclose(self) -> None:
        from codestill.llm import aclose

        await aclose(self.model)


def _local_model(model: str) -> str:
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


class TransformersSampler:
    """``AutoModelForCausalLM.generate`` in batches of ``batch_size`` sequences, in a worker thread."""

    concurrent = False

    def __init__(self, model: str, max_new_tokens: int, batch_size: int, style: PromptStyle, seed: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = f"hf:{model}"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(_local_model(model))
            self.model = AutoModelForCausalLM.from_pretrained(_local_model(model))
        except (OSError, ValueError) as e:
            raise UnknownModel(f"hf:{model}: cannot load it ({str(e).splitlines()[0][:200]}); give a local "
                               "model directory or a hub id you can download") from None
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self.chat = style == "chat" or (style == "auto" and bool(getattr(self.tokenizer, "chat_template", None)))
        if style == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise BadModelSpec(f"{self.name}: --prompt-style chat, but the tokenizer has no chat template; "
                               "use --prompt-style base")
        self.tokenizer.padding_side = "left"  # decoder-only models continue the right end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, batch_size, seed
        self.context = getattr(self.model.config, "max_position_embeddings", None)

    def _text(self, r: GenRequest) -> str:
        if not self.chat:
            return r.prompt
        messages = [{"role": role, "content": content} for role, content in r.messages]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        return await asyncio.to_thread(self._generate, requests)

    def _generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        import torch

        out: list[list[Generation]] = [[] for _ in requests]
        # One row per sample; rows of one temperature batch together.
        rows = [(i, self._text(r), r.temperature) for i, r in enumerate(requests) for _ in range(r.n)]
        encoded = [(i, self.tokenizer(text, add_special_tokens=not self.chat).input_ids, t) for i, text, t in rows]
        todo = []
        for i, ids, t in encoded:
            room = self.max_new_tokens if self.context is None else min(self.max_new_tokens, self.context - len(ids))
            if room <= 0:
                out[i].append(Generation("", f"the prompt ({len(ids)} tokens) fills the model's context "
                                             f"({self.context} tokens)"))
            else:
                todo.append((i, ids, t))
        groups: dict[float, list[tuple[int, list[int], float]]] = {}
        for row in todo:
            groups.setdefault(row[2], []).append(row)
        torch.manual_seed(self.seed)  # what transformers.set_seed does: sampled runs repeat
        for temperature, group in groups.items():
            group.sort(key=lambda row: -len(row[1]))  # similar lengths together: less padding
            for start in range(0, len(group), self.batch_size):
                batch = group[start: start + self.batch_size]
                texts = self._batch([ids for _, ids, _ in batch], temperature)
                for (i, _, _), text in zip(batch, texts, strict=True):
                    out[i].append(Generation(text))
        return out

    def _batch(self, ids: list[list[int]], temperature: float) -> list[str]:
        import torch

        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        room = self.max_new_tokens if self.context is None else min(self.max_new_tokens, self.context - width)
        sampling: dict[str, Any] = ({"do_sample": True, "temperature": temperature, "top_p": 0.95}
                                    if temperature > 0 else {"do_sample": False})
        with torch.no_grad():
            generated = self.model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max(1, room),
                                            pad_token_id=pad, **sampling)
        return self.tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)

    async def aclose(self) -> None:
        return None


class VLLMSampler:
    """vLLM's offline engine (GPU only). Not exercised by the CPU test suite."""

    concurrent = False
    batch_size = 256  # sequences per engine call: vLLM schedules them itself; results still stream per call

    def __init__(self, model: str, max_new_tokens: int, style: PromptStyle, seed: int) -> None:
        from vllm import LLM

        self.name = f"hf:{model}"
        self.engine = LLM(model=_local_model(model), seed=seed)
        self.tokenizer = self.engine.get_tokenizer()
        self.chat = style == "chat" or (style == "auto" and bool(getattr(self.tokenizer, "chat_template", None)))
        self.max_new_tokens = max_new_tokens

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        return await asyncio.to_thread(self._generate, requests)

    def _generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        from vllm import SamplingParams

        prompts = [self.tokenizer.apply_chat_template([{"role": k, "content": c} for k, c in r.messages],
                                                      add_generation_prompt=True, tokenize=False)
                   if self.chat else r.prompt for r in requests]
        params = [SamplingParams(n=r.n, temperature=r.temperature, top_p=0.95 if r.temperature > 0 else 1.0,
                                 max_tokens=self.max_new_tokens, seed=r.seed) for r in requests]
        results = self.engine.generate(prompts, params)
        return [[Generation(o.text) for o in res.outputs] for res in results]

    async def aclose(self) -> None:
        return None


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _check_local(model: str) -> None:
    """A path-like name must be a model directory: say so plainly, rather than let the hub client try
    to read it as a repository id."""
    path = Path(model).expanduser()
    if not (path.exists() or model.startswith(("/", "./", "../", "~"))):
        return  # a hub id
    if not path.is_dir():
        raise UnknownModel(f"hf:{model}: no such model directory; give a directory written by save_pretrained "
                           "or a hub id")
    if not (path / "config.json").is_file():
        from training._rundir import MODEL_DIR

        hint = (f"; a codestill train run keeps its model in {path / MODEL_DIR}"
                if (path / MODEL_DIR / "config.json").is_file() else "")
        raise UnknownModel(f"hf:{model}: not a model directory (no config.json); give a directory written by "
                           f"save_pretrained{hint}")


def make_sampler(spec: str, llm: LLMConfig, *, max_new_tokens: int, batch_size: int, style: PromptStyle,
                 engine: Literal["auto", "transformers", "vllm"], seed: int) -> Sampler:
    """The sampler for ``spec``: ``openai:...`` a chat model; ``hf:<id or dir>`` or an existing
    directory a local checkpoint (vLLM when ``engine`` allows it and it can run, else transformers)."""
    if spec.startswith("openai:"):
        if style == "base":
            raise BadModelSpec(f"{spec}: a chat endpoint cannot continue a base-style prompt; "
                               "use --prompt-style auto or chat")
        return ChatSampler(spec, llm, max_new_tokens)
    if spec.startswith("hf:"):
        model = spec[3:]
    elif Path(spec).expanduser().is_dir():
        model = spec
    else:
        raise BadModelSpec(f"model spec {spec!r} is not understood; use openai:<model>[@<base_url>], "
                           "hf:<model id or local dir>, or a checkpoint directory")
    if not model:
        raise BadModelSpec("model spec 'hf:' names no model; use hf:<model id or local dir>")
    _check_local(model)
    if engine == "vllm" or (engine == "auto" and _vllm_usable()):
        return VLLMSampler(model, max_new_tokens, style, seed)
    return TransformersSampler(model, max_new_tokens, batch_size, style, seed)
