"""The chat-model factory: one spec string -> a LangChain ``BaseChatModel``.

    openai:<model>               the OpenAI API; key from llm.api_key or OPENAI_API_KEY
    openai:<model>@<base_url>    any OpenAI-compatible server (vllm serve, sglang, codestill sim);
                                 key from llm.api_key only, else "EMPTY": your OpenAI key is never
                                 sent to a server you did not name as OpenAI
    hf:<model id or local dir>   local transformers with the model's chat template (CPU or GPU)

Resilience is the OpenAI client's own: ``max_retries`` with exponential backoff and jitter on
408/409/429/5xx, connection errors and timeouts, honouring ``Retry-After`` / ``retry-after-ms``;
``timeout`` per try. The concurrency limit per endpoint is the client's connection pool: make one
chat model per endpoint and share it; calls past ``max_concurrency`` wait for a free connection
(without a pool deadline). Token usage and latency of every call reach the trace store through
LangChain's callbacks; ``codestill.structured.ask`` also returns them with each reply.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from codestill.config import LLMConfig
from codestill.errors import (
    BadModelSpec,
    LLMError,
    MissingCredentials,
    ModelCallError,
    ModelUnreachable,
    UnknownModel,
)

_SPEC_HELP = "use openai:<model>, openai:<model>@<base_url> or hf:<model id or local dir>"


@dataclass(frozen=True)
class ModelSpec:
    provider: Literal["openai", "hf"]
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")


def parse_spec(spec: str) -> ModelSpec:
    provider, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise BadModelSpec(f"model spec {spec!r} has no provider; {_SPEC_HELP}")
    if provider == "hf":
        return ModelSpec("hf", rest)
    if provider != "openai":
        raise BadModelSpec(f"model spec {spec!r}: unknown provider {provider!r}; {_SPEC_HELP}")
    model, at, url = rest.partition("@")
    if not model or (at and not url.startswith(("http://", "https://"))):
        raise BadModelSpec(f"model spec {spec!r}: expected openai:<model>@http(s)://host:port/v1; {_SPEC_HELP}")
    return ModelSpec("openai", model, url.rstrip("/") or None)


def make_chat_model(spec: str, config: LLMConfig | None = None) -> BaseChatModel:
    """A chat model for ``spec``, with the timeouts, retries and concurrency limit of ``config``."""
    config = config or LLMConfig()
    parsed = parse_spec(spec)
    if parsed.provider == "hf":
        return _hf_model(parsed.model, config)
    return _openai_model(parsed, config)


def _openai_model(spec: ModelSpec, config: LLMConfig) -> BaseChatModel:
    import openai
    from pydantic import SecretStr

    from codestill._openai_chat import CodestillChatOpenAI

    key = config.api_key.get_secret_value() if config.api_key else None
    if spec.base_url is None:
        key = key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise MissingCredentials(
                f"{spec}: no OpenAI API key; export OPENAI_API_KEY (or set llm.api_key / CODESTILL_LLM__API_KEY), "
                "or name a local server: openai:<model>@http://host:8000/v1")
    # The SDK's own HTTP client classes (httpx2 on openai>=3); pool=None: waiting for one of the
    # max_concurrency connections is queueing, not a fault, so it has no deadline of its own.
    timeout = openai.Timeout(config.timeout_s, pool=None)
    limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
        max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency)
    return CodestillChatOpenAI(
        spec_label=str(spec),
        model=spec.model,
        base_url=spec.base_url,
        api_key=SecretStr(key or "EMPTY"),
        temperature=config.temperature,
        max_completion_tokens=config.max_tokens,
        timeout=timeout,
        max_retries=config.max_retries,
        http_client=openai.DefaultHttpxClient(limits=limits, timeout=timeout),
        # The SDK's aiohttp transport: ~35% less client CPU per call than its httpx one, whose pool
        # scans every connection per request (bench/llm_overhead.py measures the difference).
        http_async_client=openai.DefaultAioHttpClient(limits=limits, timeout=timeout),
        stream_usage=True,
        # Chat Completions, which every OpenAI-compatible server speaks (not the Responses API).
        use_responses_api=False,
    )


def _hf_model(model: str, config: LLMConfig) -> BaseChatModel:
    from rich.console import Console

    from codestill._hf_chat import LocalChatModel

    local = Path(model).expanduser()
    try:
        chat = LocalChatModel.load(
            str(local) if local.exists() else model, max_tokens=config.max_tokens or 512,
            temperature=config.temperature, timeout_s=config.timeout_s, max_batch=config.max_concurrency)
    except (OSError, ValueError) as e:
        raise UnknownModel(
            f"hf:{model}: cannot load it ({str(e).splitlines()[0][:200]}); give a local model directory "
            "or a hub id you can download") from None
    lm = chat.lm
    Console(stderr=True, highlight=False).print(
        f"hf:{model}: {lm.num_parameters() / 1e6:.0f}M parameters on {lm.device.type}, "
        f"{str(lm.dtype).removeprefix('torch.')}")
    return chat


def _refused(error: BaseException) -> bool:
    """Was the connection refused or the host unknown? The aiohttp transport reports both as a
    connect *timeout*, so the cause chain is the only honest witness."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror) or type(seen).__name__ in (
                "ClientConnectorError", "ConnectError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def aclose(model: BaseChatModel) -> None:
    """Close a chat model's connections (call it before the event loop ends)."""
    client = getattr(model, "root_async_client", None)
    if client is not None:
        await client.close()
    local = getattr(model, "aclose", None)  # an hf: model's batching worker
    if local is not None:
        await local()


def explain(error: BaseException, spec: str) -> LLMError | None:
    """A user-facing error for failures every later call would repeat; None for transient ones."""
    import openai

    where = f"{spec}"
    if isinstance(error, openai.APIConnectionError) and (
            not isinstance(error, openai.APITimeoutError) or _refused(error)):
        return ModelUnreachable(
            f"{where}: the server does not answer ({error.__cause__ or error}); start it "
            "(e.g. `codestill sim serve --port 8000` or `vllm serve ...`) or fix the URL in the spec")
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return MissingCredentials(f"{where}: the server refused the API key ({error.status_code}); "
                                  "set a valid one in OPENAI_API_KEY or CODESTILL_LLM__API_KEY")
    if isinstance(error, openai.NotFoundError):
        return UnknownModel(f"{where}: the server does not serve this model ({error.message}); "
                            f"run `codestill llm check {spec}` to list the models it serves")
    return None


if TYPE_CHECKING:
    from codestill._capability import Capability


@dataclass(frozen=True)
class CheckResult:
    """What ``check_model`` found: what the endpoint serves, how the tiny call went (its reply's first
    200 characters, usage as the server reported it, 0 where it reported none), and which structured
    method works there (``codestill._capability``; None when not probed)."""

    spec: str
    served: tuple[str, ...]
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    reply: str
    finish_reason: str | None = None
    capability: Capability | None = None


async def check_model(spec: str, config: LLMConfig | None = None, *, probe: bool = True) -> CheckResult:
    """List what the endpoint serves, make one tiny call, then (``probe``) find out which structured
    method the server honours. Raises an ``LLMError`` saying the fix."""
    import openai

    from codestill._capability import detect_structured


    model = make_chat_model(spec, config)
    served: tuple[str, ...] = ()
    parsed = parse_spec(spec)
    try:
        if parsed.provider == "openai":
            page = await model.root_async_client.models.list()  # type: ignore[attr-defined]
            served = tuple(m.id for m in page.data)
            if served and parsed.model not in served:
                raise UnknownModel(f"{spec}: the server does not serve {parsed.model!r}; it serves: "
                                   f"{', '.join(served[:10])}; fix the model name in the spec")
        start = time.perf_counter()
        reply = await model.ainvoke([HumanMessage("Reply with the single word: ready")])
        latency_s = time.perf_counter() - start
        capability = await detect_structured(model, spec) if probe else None
    except ModelCallError as e:
        raise LLMError(f"{spec}: the call failed ({e}); try again later") from None
    except openai.OpenAIError as e:  # the raw client's models.list()
        raise explain(e, spec) or LLMError(f"{spec}: the call failed ({e}); try again later") from None
    finally:
        await aclose(model)
    usage = getattr(reply, "usage_metadata", None) or {}
    finish = (getattr(reply, "response_metadata", None) or {}).get("finish_reason")
    return CheckResult(spec, served, latency_s, usage.get("input_tokens", 0), usage.get("output_tokens", 0),
                       str(reply.content)[:200], finish, capability)
