"""A plain OpenAI-compatible chat server that answers every request after a fixed latency.

It is the server of ``bench/instruct_throughput.py``: it knows nothing of codestill, costs little
CPU (aiohttp, no framework), and counts the requests it answered. A request with a forced tool
(``tool_choice`` naming a function) gets a call of that tool; one with ``response_format``
``json_schema`` gets that JSON as its content; any other gets a line of text. Arguments are filled
from the tool's JSON Schema: strings with words unique to the request (so an evolved instruction
always differs from its parent), arrays with three items, booleans ``true``, numbers 1.

    python bench/_stub_server.py --latency 0.2 [--port 0]

prints ``http://127.0.0.1:<port>/v1`` on its first stdout line when it listens. ``GET /stats``
returns ``{"requests": n, "first_request": t0, "last_answer": t1}`` (wall-clock times); ``POST
/reset`` starts the count again.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import sys
import time
from typing import Any

from aiohttp import web

_WORDS = ("alpha", "bravo", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
          "kestrel", "lumen", "meadow", "nickel", "onyx", "prairie", "quartz", "raven", "sable", "tundra")


def _text(n: int) -> str:
    digest = hashlib.sha256(str(n).encode()).digest()
    words = " ".join(_WORDS[b % len(_WORDS)] for b in digest[:8])  # two texts share few words in place
    return f"Write a function that handles the {words} case of request {n}, returning a list."


def fill(schema: dict[str, Any], defs: dict[str, Any], n: int) -> Any:
    """A value that validates against ``schema`` (the subset pydantic writes)."""
    if "$ref" in schema:
        return fill(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, n)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return fill(schema[key][0], defs, n)
    kind = schema.get("type", "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: fill(sub, defs, n) for name, sub in props.items()}
    if kind == "array":
        return [fill(schema.get("items", {}), defs, n * 3 + k) for k in range(3)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 1
    if "enum" in schema:
        return schema["enum"][0]
    return _text(n)


def _schema_of(body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        for tool in body.get("tools", []):
            if tool.get("function", {}).get("name") == name:
                return name, tool["function"].get("parameters", {})
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return None, fmt.get("json_schema", {}).get("schema", {})
    return None, None


def make_app(latency: float) -> web.Application:
    counter = itertools.count()
    answered = [0]
    seen: dict[str, float] = {}  # wall-clock time of the first request and of the last answer

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        n = next(counter)
        seen.setdefault("first_request", time.time())
        await asyncio.sleep(latency)
        tool, schema = _schema_of(body)
        message: dict[str, Any] = {"role": "assistant", "content": _text(n)}
        if schema is not None:
            args = json.dumps(fill(schema, schema.get("$defs", {}), n))
            if tool is not None:
                message = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{n}", "type": "function", "function": {"name": tool, "arguments": args}}]}
            else:
                message["content"] = args
        answered[0] += 1
        seen["last_answer"] = time.time()
        return web.json_response({
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if tool is not None else "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})

    async def reset(_request: web.Request) -> web.Response:
        answered[0] = 0
        seen.clear()
        return web.json_response({"requests": 0})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"requests": answered[0], **seen})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


async def _serve(latency: float, port: int) -> None:
    runner = web.AppRunner(make_app(latency), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"http://127.0.0.1:{bound}/v1", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible stub chat server with a fixed latency.")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.latency, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
