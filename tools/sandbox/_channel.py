"""The host's side of the runner's channel, shared by every backend (no Docker here): the two kinds
of fault, a frame's header, and one run from request to verdict.

A backend supplies ``exchange(request, limits) -> raw reply``: a container's attach stream
(``_container.py``) or a local process's pipes (``_local.py``). The request, the retries on
infrastructure faults and the verdict are the same for all of them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from codestill.schemas import ExecResult, Limits, TestSuite
from tools.sandbox._runner import HEADER, MAGIC, MAX_FRAME
from tools.sandbox._tests import InvalidTests, prepare
from tools.sandbox._verdict import build_result

Exchange = Callable[[dict[str, Any], Limits], Awaitable[dict[str, Any]]]
_ids = itertools.count(1)


class InfraFault(Exception):
    """The container (or local runner process) or the engine failed us; the run is retried elsewhere."""


class ProtocolFault(Exception):
    """Bytes on the runner's channel that the runner did not write.

    The runner writes only well-formed frames, and the only other processes in a container are
    the program's: during a run, this is the program's doing and its verdict (never retried).
    """


def frame_length(head: bytes | bytearray, buffered: bytes | bytearray = b"") -> int:
    """The body length a frame's 8-byte header announces; stray bytes are judged on these 8 alone."""
    magic, n = HEADER.unpack_from(head)
    if magic != MAGIC or n > MAX_FRAME:
        shown = bytes(buffered or head)
        raise ProtocolFault(f"{len(shown)} stray bytes, starting {shown[:24]!r}")
    return n


def frame_body(body: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ProtocolFault(f"a frame of {len(body)} bytes that is not a JSON object")
    return reply


async def request(writer: asyncio.StreamWriter, read_frame: Callable[[], Awaitable[dict[str, Any]]],
                  payload: dict[str, Any], timeout: float, who: str) -> dict[str, Any]:
    """One request to a runner, one reply: a container's attach stream and a local process's pipes alike.
    InfraFault: ``who`` (the container or process) died or hung; ProtocolFault: something other than
    the runner wrote on its channel."""
    payload = {**payload, "id": next(_ids)}
    data = json.dumps(payload, separators=(",", ":")).encode()
    try:
        writer.write(HEADER.pack(MAGIC, len(data)) + data)
        await writer.drain()
        reply = await asyncio.wait_for(read_frame(), timeout)
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
        raise InfraFault(f"{who}: {type(e).__name__} {e}".strip()) from None
    if reply.get("id") != payload["id"]:
        raise ProtocolFault(f"a reply to request {reply.get('id')!r} came for {payload['id']}")
    return reply


async def judged_run(exchange: Exchange, program: str | bytes, tests: TestSuite | str, limits: Limits,
                     retries: int, infra: tuple[type[BaseException], ...]) -> ExecResult:
    """Run ``program`` against ``tests`` through ``exchange``. Never raises for anything the program
    does: ``infra`` faults are retried ``retries`` times, then ``infra_error``."""
    run_id = uuid.uuid4().hex
    try:
        req, units = prepare(program, tests, limits)
    except InvalidTests as e:
        return ExecResult(run_id=run_id, status="error", message=str(e), limits=limits)
    last = ""
    for attempt in range(1, retries + 2):
        try:
            raw = await exchange(req, limits)
        except ProtocolFault as e:  # the program's doing: its verdict, not retried elsewhere
            return ExecResult(run_id=run_id, status="error", limits=limits, attempts=attempt,
                              message=f"the program wrote into the sandbox runner's channel ({e}); "
                                      "the run is void and its container destroyed")
        except infra as e:
            last = f"{type(e).__name__}: {e}".strip(": ")
            continue
        return build_result(raw, units, req["nonce"], limits, run_id, attempts=attempt)
    return ExecResult(run_id=run_id, status="infra_error", limits=limits, attempts=retries + 1,
                      message=f"the sandbox failed {retries + 1} times: {last}")
