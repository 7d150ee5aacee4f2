"""The HTTP side: OpenAI's chat-completions protocol over Starlette.

    GET  /v1/models, /v1/models/{id}   the one model, marked as a simulator (owned_by, description)
    POST /v1/chat/completions          non-stream and SSE stream (stream_options.include_usage),
                                       n choices, tool calls, response_format
    GET  /health                       {"status": "ok", "chat_requests": n}: n chat requests received so far

How tools and ``response_format`` are handled follows ``SimConfig.server`` (``profile``): "sim", "openai"
and "vllm" honour both; "vllm-no-tool-parser" refuses any ``tool_choice`` but "none" (absent with tools
means "auto", as in vLLM) with HTTP 400, as ``vllm serve`` without ``--enable-auto-tool-choice
--tool-call-parser`` refuses "auto", and honours ``response_format``; "transformers-serve" ignores both
and answers in prose. (A current vLLM does honour a named or "required" tool choice without a parser,
through guided decoding; the profile is the stricter server, where only a JSON schema gets structure.)

A realistic teacher's flaws (``_teacher``) are labelled in the ``x-codestill-sim-flaws`` header, one
label per choice ("-" for none); the header is absent when no choice has one.

Errors use OpenAI's body, ``{"error": {"message", "type", "param", "code"}}``. Usage counts are an
approximation: one token per 4 characters (of the messages' text and tools' JSON for the prompt, of the
content or tool arguments for the completion), rounded up; no tokenizer is involved.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from codestill.data import BankProblem, load_bank
from codestill.schemas import ROLES
from codestill.sim._bank import ProblemIndex
from codestill.sim._config import SimConfig
from codestill.sim._faults import FaultDice, body_digest
from codestill.sim._instruct import conceptor, evolver
from codestill.sim._mutant_runs import MutantRuns
from codestill.sim._program import asks_program, case_job, run_cases
from codestill.sim._render import Reply, marked_schema, pick_tool, render
from codestill.sim._roles import Ask, default_handlers, generic
from codestill.sim._seeds import concepts_of, load_knowledge, seed_tests
from codestill.sim._strong import StrongTests
from codestill.sim._teacher import correct_tests, mutant_job
from codestill.sim._teacher import handlers as teacher_handlers

DESCRIPTION = ("A simulator, not a language model: codestill sim answers from a bank of MBPP and HumanEval "
               "reference solutions, with set latency, planted bugs and injected faults.")
OWNER = "codestill-simulator"
CHARS_PER_TOKEN = 4
_ROLE = re.compile(r"\s*You are the codestill (\w+)\.")
_SCHEMA_FORMATS = ("json_schema", "json_object")
_STREAM_CHARS = 64  # characters per SSE chunk when not paced: few enough events to stay cheap
FLAWS_HEADER = "x-codestill-sim-flaws"  # the realistic teacher's flaw label of each choice ("-": none)


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def error(status: int, message: str, kind: str, code: str | int | None = None, param: str | None = None,
          headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def refused_tool_choice(body: dict) -> str | None:
    """Why a vLLM started without a tool-call parser refuses this request (None: it does not): a request
    with tools whose ``tool_choice`` is "auto" (also when absent), "required" or a named function."""
    if not body.get("tools"):
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    if choice in ("auto", None):  # vLLM's own words
        return '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
    what = ('"required" tool choice' if choice == "required" else
            f"named tool choice ({((choice.get('function') or {}).get('name'))!r})" if isinstance(choice, dict)
            else f"tool choice {choice!r}")
    return (f"{what} requires --enable-auto-tool-choice and --tool-call-parser to be set (codestill sim: "
            "server profile vllm-no-tool-parser)")


@dataclass(frozen=True)
class ChatRequest:
    body: dict
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, text)
    n: int
    stream: bool
    include_usage: bool
    seed: int | None
    max_tokens: int | None


def parse(raw: bytes) -> ChatRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"We could not parse the JSON body of your request: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("Missing required parameter: 'model'.", "model")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("'messages' must be a non-empty array of objects with a 'role'.", "messages")
    n = 1 if body.get("n") is None else body["n"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise BadRequest(f"Invalid 'n': {n!r}; expected an integer from 1 to 128.", "n")
    options = body.get("stream_options") or {}
    seed = body.get("seed")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    for name, value in (("seed", seed), ("max_tokens", limit)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadRequest(f"Invalid '{name}': {value!r}; expected an integer.", name)
    if not isinstance(options, dict):
        raise BadRequest("'stream_options' must be an object.", "stream_options")
    return ChatRequest(body=body, model=model, messages=tuple((m["role"], _text(m.get("content"))) for m in messages),
                       n=n, stream=body.get("stream") is True, include_usage=options.get("include_usage") is True,
                       seed=seed, max_tokens=limit if limit and limit > 0 else None)


class SimServer:
    """One app's state: the problem index, the role registry, the fault dice, the tester's extra tests."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        seeds = load_knowledge(config.knowledge)
        self.index = ProblemIndex(load_bank() + seeds)
        self.rates = config.rates()
        self.handlers = {**teacher_handlers(default_handlers()), "evolver": evolver,
                         "conceptor": conceptor([(p, concepts_of(p.reference, p.entry_point)) for p in seeds])}
        self.dice = FaultDice(config)
        cache = Path(config.cache_dir) if config.cache_dir else None
        self.strong = StrongTests(config.seed, cache_dir=cache) if config.strong_tests else None
        # a seed's only tests: always made
        self.seed_tests = StrongTests(config.seed, make=seed_tests, cache_dir=cache)
        self.mutant_runs = MutantRuns()  # the realistic tester's wrong expected values
        self.program_cases = MutantRuns(run=run_cases)  # a program task's stdin/stdout cases (``_program``)
        self.started = int(time.time())
        self.chat_requests = 0  # received, answered or not: what /health reports

    def model_card(self) -> dict:
        return {"id": self.config.model, "object": "model", "created": self.started, "owned_by": OWNER,
                "description": DESCRIPTION}

    async def models(self, request: Request) -> Response:
        return _json({"object": "list", "data": [self.model_card()]})

    async def model(self, request: Request) -> Response:
        if request.path_params["model_id"] != self.config.model:
            return self._unknown_model(request.path_params["model_id"])
        return _json(self.model_card())

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok", "description": DESCRIPTION, "chat_requests": self.chat_requests})

    def _unknown_model(self, model: str) -> Response:
        return error(404, f"The model `{model}` does not exist", "invalid_request_error", "model_not_found", "model")

    async def chat(self, request: Request) -> Response:
        self.chat_requests += 1
        try:
            req = parse(await request.body())
        except BadRequest as e:
            return error(400, str(e), "invalid_request_error", param=e.param)
        if req.model != self.config.model:
            return self._unknown_model(req.model)
        cfg = self.config
        if cfg.profile == "vllm-no-tool-parser" and (refusal := refused_tool_choice(req.body)) is not None:
            return error(400, refusal, "BadRequestError", 400)
        digest = body_digest(req.body)
        occurrence = self.dice.occurrence(digest)
        fault = self.dice.roll(digest, occurrence)
        if fault == "hang":
            return await self._hang(request)
        if fault in ("429", "500") or not req.stream:
            await asyncio.sleep(cfg.latency_s)
        if fault == "429":
            seconds = max(1, math.ceil(cfg.retry_after_ms / 1000))
            return error(429, "Rate limit reached for codestill-sim (an injected fault); retry after "
                         f"{cfg.retry_after_ms} ms.", "requests", "rate_limit_exceeded",
                         headers={"retry-after-ms": str(cfg.retry_after_ms), "retry-after": str(seconds)})
        if fault == "500":
            return error(500, "The server had an error while processing your request (an injected fault).",
                         "server_error")
        role, problem = self._about(req)
        extra = ""
        tests = self.tester_tests(problem) if problem is not None else None
        if role == "tester" and problem is not None and tests is not None:
            # Worked out once per problem, in child processes: off the event loop.
            cached = tests.cached(problem.id)
            extra = cached if cached is not None else await asyncio.to_thread(tests.get, problem)
        asks = [await self._probed(ask) for ask in self._asks(req, role, problem, extra)]
        replies = self._replies(req, fault, role, asks)
        ident = f"chatcmpl-{digest[:24]}{occurrence:x}"
        usage = self._usage(req, replies)
        flaws = {FLAWS_HEADER: ",".join(r.flaw or "-" for r in replies)} if any(r.flaw for r in replies) else {}
        if req.stream:
            return StreamingResponse(self._events(req, replies, ident, usage), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache", **flaws})
        if cfg.tokens_per_s > 0:
            await asyncio.sleep(max(tokens(len(r.content or r.arguments or "")) for r in replies) / cfg.tokens_per_s)
        response = _json({"id": ident, "object": "chat.completion", "created": int(time.time()), "model": cfg.model,
                          "system_fingerprint": OWNER, "usage": usage,
                          "choices": [{"index": i, "message": _message(r, ident, i), "logprobs": None,
                                       "finish_reason": r.finish_reason} for i, r in enumerate(replies)]})
        response.headers.update(flaws)
        return response

    async def _hang(self, request: Request) -> Response:
        """Hold the request until the client gives up (or hang_s passes), so no task outlives it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.hang_s
        while (left := deadline - loop.time()) > 0:
            if await request.is_disconnected():
                break
            await asyncio.sleep(min(0.1, left))
        return error(504, "The request hung (an injected fault).", "server_error", "timeout")

    def tester_tests(self, problem: BankProblem) -> StrongTests | None:
        """Where the tester's own tests for ``problem`` come from (None: the task's tests only)."""
        return self.seed_tests if problem.source == "seed" else self.strong

    def _about(self, req: ChatRequest) -> tuple[str, BankProblem | None]:
        """Who asks (the role in the system line) and about which bank problem."""
        system = next((text for role, text in req.messages if role in ("system", "developer")), "")
        m = _ROLE.match(system)
        role = m.group(1) if m and m.group(1) in ROLES else "unknown"
        user_text = "\n".join(text for r, text in req.messages if r == "user")
        return role, self.index.match(user_text) if user_text else None

    def _asks(self, req: ChatRequest, role: str, problem: BankProblem | None, extra_tests: str = "") -> list[Ask]:
        """What each of the request's n choices asks the role handler."""
        cfg = self.config
        users = [text for r, text in req.messages if r == "user"]
        tool = pick_tool(req.body.get("tools"), req.body.get("tool_choice")) if cfg.tool_calls else None
        response_format = req.body.get("response_format") if cfg.response_formats else None
        prompt = "\n".join(text for _, text in req.messages)
        structured = (tool is not None or marked_schema(prompt) is not None
                      or (isinstance(response_format, dict) and response_format.get("type") in _SCHEMA_FORMATS))
        base = int.from_bytes(hashlib.sha256(f"{cfg.seed}|{req.seed}".encode()).digest()[:4], "big")
        return [Ask(role=role, problem=problem, user_text="\n".join(users), last_user=users[-1] if users else "",
                    choice=i, style=base + i, seed=cfg.seed, bug_rate=cfg.bug_rate, structured=structured,
                    extra_tests=extra_tests, evol_fail_rate=cfg.evol_fail_rate, rates=self.rates)
                for i in range(req.n)]

    async def _probed(self, ask: Ask) -> Ask:
        """The ask with the mutant values its (realistic) tester needs, worked out off the event loop and
        cached by mutant and expressions, so the same request always gets the same values; a program
        task's tester gets its cases (``_program``) the same way."""
        if ask.role == "tester" and ask.problem is not None and asks_program(ask.user_text):
            cases = case_job(ask.problem, correct_tests(ask))
            if cases is None:
                return ask
            got = self.program_cases.cached(cases)
            return replace(ask, io_cases=got if got is not None else await asyncio.to_thread(self.program_cases.get, cases))
        job = mutant_job(ask) if ask.role == "tester" and self.rates.test_flaw_rate > 0 else None
        if job is None:
            return ask
        cached = self.mutant_runs.cached(job)
        return replace(ask, probed=cached if cached is not None else await asyncio.to_thread(self.mutant_runs.get, job))

    def _replies(self, req: ChatRequest, fault: str | None, role: str, asks: list[Ask]) -> list[Reply]:
        cfg = self.config
        handler = self.handlers.get(role, generic)
        tool = pick_tool(req.body.get("tools"), req.body.get("tool_choice")) if cfg.tool_calls else None
        response_format = req.body.get("response_format") if cfg.response_formats else None
        prompt = "\n".join(text for _, text in req.messages)
        replies = []
        for ask in asks:
            reply = render(handler(ask), role, tool=tool, response_format=response_format, prompt=prompt,
                           style=ask.style, fault=fault)
            replies.append(_limit(reply, req.max_tokens))
        return replies

    def _usage(self, req: ChatRequest, replies: list[Reply]) -> dict:
        chars = sum(len(text) for _, text in req.messages)
        if req.body.get("tools"):
            chars += len(orjson.dumps(req.body["tools"]))
        prompt = tokens(chars)
        completion = sum(tokens(len(r.content or "") + len(r.arguments or "")) for r in replies)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def _events(self, req: ChatRequest, replies: list[Reply], ident: str, usage: dict) -> AsyncIterator[bytes]:
        cfg = self.config
        head = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": cfg.model,
                "system_fingerprint": OWNER}
        if req.include_usage:
            head["usage"] = None

        def event(i: int, delta: dict, finish: str | None = None) -> bytes:
            chunk = {**head, "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        await asyncio.sleep(cfg.latency_s)
        size = CHARS_PER_TOKEN * max(1, round(cfg.tokens_per_s * 0.05)) if cfg.tokens_per_s else _STREAM_CHARS
        for i, r in enumerate(replies):
            text = (r.arguments if r.tool_name else r.content) or ""
            if r.tool_name:
                call = {"index": 0, "id": _call_id(ident, i), "type": "function",
                        "function": {"name": r.tool_name, "arguments": ""}}
                yield event(i, {"role": "assistant", "content": None, "tool_calls": [call]})
            else:
                yield event(i, {"role": "assistant", "content": ""})
            for start in range(0, len(text or ""), size):
                piece = text[start: start + size]
                if cfg.tokens_per_s:
                    await asyncio.sleep(tokens(len(piece)) / cfg.tokens_per_s)
                delta = ({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} if r.tool_name
                         else {"content": piece})
                yield event(i, delta)
            yield event(i, {}, r.finish_reason)
        if req.include_usage:
            yield b"data: " + orjson.dumps({**head, "choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"


def _call_id(ident: str, i: int) -> str:
    return f"call_{ident[9:25]}{i}"


def _message(r: Reply, ident: str, i: int) -> dict:
    if r.tool_name:
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": _call_id(ident, i), "type": "function", "function": {"name": r.tool_name, "arguments": r.arguments}}]}
    return {"role": "assistant", "content": r.content, "refusal": None}


def _limit(reply: Reply, max_tokens: int | None) -> Reply:
    """Honour max_tokens the way a model does: stop there, finish_reason "length"."""
    text = reply.arguments if reply.tool_name else reply.content
    if max_tokens is None or text is None or tokens(len(text)) <= max_tokens:
        return reply
    cut = text[: max_tokens * CHARS_PER_TOKEN]
    if reply.tool_name:
        return replace(reply, arguments=cut, finish_reason="length")
    return replace(reply, content=cut, finish_reason="length")


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return error(status, f"{detail}: {request.method} {request.url.path}", "invalid_request_error")


def create_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app (Starlette). All state lives in this app's ``SimServer``."""
    sim = SimServer(config or SimConfig())
    routes = [
        Route("/v1/models", sim.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", sim.model, methods=["GET"]),
        Route("/v1/chat/completions", sim.chat, methods=["POST"]),
        Route("/health", sim.health, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.sim = sim
    return app


def warm_tester(config: SimConfig, problem_ids: Iterable[str], parallel: int = 2) -> int:
    """Work out the tester's own tests for these bank problems into ``config.cache_dir`` before a
    server with the same config is started; returns how many problems have them now."""
    if not config.cache_dir:
        raise ValueError("warm_tester needs config.cache_dir: the folder the server will read them from")
    server = SimServer(config)
    jobs = [(tests, p) for p in (server.index.get(i) for i in problem_ids)
            if p is not None and (tests := server.tester_tests(p)) is not None]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda job: job[0].get(job[1]), jobs))
    return len(jobs)
