"""Samplers: what turns prompts into completions, behind one small protocol.

    openai:<model>[@<url>]   ChatSampler          any chat model of ``codestill.llm`` (OpenAI, vLLM or
                                                  sglang servers, the sim); n samples in one request
    hf:<id or dir>, <dir>    TransformersSampler  local decoding with continuous batching (greedy when
                                                  n == 1); a chat reply ends at its first closed ```python block
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
import re
from collections.abc import Callable, Sequence
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
    """``concurrent``: many ``generate`` calls may be in flight at once (a server, or a local model that
    batches them itself); otherwise the evaluation hands it one batch at a time of about ``batch_size``
    sequences. ``stops_at_code``: a chat reply ends once its first ```python block has closed, so that
    block is its code (otherwise the last block is); samplers without the attribute do not stop early."""

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
    stops_at_code = False

    def __init__(self, spec: str, llm: LLMConfig, max_new_tokens: int) -> None:
        from codestill.llm import make_chat_model

        self.name = spec
        self.batch_size = llm.max_concurrency
        self.model = make_chat_model(spec, llm.model_copy(update={"max_tokens": max_new_tokens}))
        self._gate = asyncio.Semaphore(llm.max_concurrency)

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, r: GenRequest) -> list[Generation]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        from codestill.errors import ModelCallError

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        messages = [kinds[role](content) for role, content in r.messages]
        try:
            async with self._gate:
                # n choices in one request; the seed makes a resumed or repeated run ask the same.
                result = await self.model.agenerate([messages], n=r.n, temperature=r.temperature, seed=r.seed)
        except ModelCallError as e:  # a fatal LLMError goes up as it is
            failed = f"model call failed after the client's retries: {e}"
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
    """A local transformers model, decoded with continuous batching (``codestill._hf_batch``): every
    request is in flight at once, up to ``batch_size`` sequences decode together, and each leaves the
    batch when it is done, its place taken by the next. A chat reply is done once its first ```python
    block has closed (only that code is scored); each sampled sequence draws from its own seeded generator, so a resumed run
    samples what an uninterrupted one would."""

    concurrent = True

    def __init__(self, model: str, max_new_tokens: int, batch_size: int, style: PromptStyle, seed: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from codestill._hf_batch import Batcher, BatchStats

        self.name = f"hf:{model}"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(_local_model(model))
            self.model = AutoModelForCausalLM.from_pretrained(_local_model(model))
        except (OSError, ValueError) as e:
            raise UnknownModel(f"hf:{model}: cannot load it ({str(e).splitlines()[0][:200]}); give a local "
                               "model directory or a hub id you can download") from None
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()  # pyright: ignore[reportArgumentType]  # transformers types .to through functools.wraps: unbound, self first
        self.chat = style == "chat" or (style == "auto" and bool(getattr(self.tokenizer, "chat_template", None)))
        if style == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise BadModelSpec(f"{self.name}: --prompt-style chat, but the tokenizer has no chat template; "
                               "use --prompt-style base")
        self.stops_at_code = self.chat
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, batch_size, seed
        self.context = getattr(self.model.config, "max_position_embeddings", None)
        eos = self.model.generation_config.eos_token_id
        eos_ids = {*(eos if isinstance(eos, list) else [eos]), self.tokenizer.eos_token_id} - {None}
        pad = self.tokenizer.pad_token_id
        self.stats = BatchStats()
        self._batcher = Batcher(self.model, eos_ids, next(iter(eos_ids)) if pad is None else pad,
                                max_batch=batch_size, max_time=None, stats=self.stats)
        self._text_of = _TokenText(self.tokenizer)

    def _text(self, r: GenRequest) -> str:
        if not self.chat:
            return r.prompt
        messages = [{"role": role, "content": content} for role, content in r.messages]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        from codestill._hf_batch import Request

        out: list[list[Generation]] = [[] for _ in requests]
        waits: list[tuple[int, asyncio.Future[Any]]] = []
        for i, r in enumerate(requests):
            ids = self.tokenizer(self._text(r), add_special_tokens=not self.chat).input_ids
            room = self.max_new_tokens if self.context is None else min(self.max_new_tokens, self.context - len(ids))
            if room <= 0:
                out[i] += [Generation("", f"the prompt ({len(ids)} tokens) fills the model's context "
                                          f"({self.context} tokens)")] * r.n
                continue
            stop = _code_closed(self._text_of) if self.chat else None
            for j in range(r.n):  # one row per sample, each with its own seed
                request = Request(list(ids), room, r.temperature, top_p=0.95 if r.temperature > 0 else 1.0,
                                  seed=(r.seed * 1_000_003 + j) % (1 << 63), stop=stop)
                waits.append((i, asyncio.wrap_future(self._batcher.submit(request))))
        for (i, _), result in zip(waits, await asyncio.gather(*(w for _, w in waits)), strict=True):
            out[i].append(Generation(self.tokenizer.decode(result.ids, skip_special_tokens=True)))
        return out

    async def aclose(self) -> None:
        await asyncio.to_thread(self._batcher.close, wait=True)


class _TokenText:
    """Token id -> its text, memoised; and the text of a whole row."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer, self._memo = tokenizer, dict[int, str]()

    def token(self, token: int) -> str:
        text = self._memo.get(token)
        if text is None:
            text = self._memo[token] = self._tokenizer.decode([token], skip_special_tokens=True)
        return text

    def __call__(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)


# A closed ```python block, closed as codestill.structured's fence reader closes it (the first ``` after).
_PYTHON_BLOCK = re.compile(r"```(?:python3?|py)[ \t]*\n.*?```", re.S | re.I)


def _code_closed(text: _TokenText) -> Callable[[list[int]], bool]:
    """Done once the reply holds a closed ```python block: decoded only when a token has a backtick."""
    return lambda ids: "`" in text.token(ids[-1]) and _PYTHON_BLOCK.search(text(ids)) is not None


class VLLMSampler:
    """vLLM's offline engine (GPU only). Not exercised by the CPU test suite."""

    concurrent = False
    stops_at_code = False
    batch_size = 256  # sequences per engine call: vLLM schedules them itself; results still stream per call

    def __init__(self, model: str, max_new_tokens: int, style: PromptStyle, seed: int) -> None:
        from vllm import LLM  # pyright: ignore[reportMissingImports]  # the gpu extra; not installed on CPU machines

        self.name = f"hf:{model}"
        self.engine = LLM(model=_local_model(model), seed=seed)
        self.tokenizer = self.engine.get_tokenizer()
        self.chat = style == "chat" or (style == "auto" and bool(getattr(self.tokenizer, "chat_template", None)))
        self.max_new_tokens = max_new_tokens

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        return await asyncio.to_thread(self._generate, requests)

    def _generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        from vllm import SamplingParams  # pyright: ignore[reportMissingImports]  # the gpu extra

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
