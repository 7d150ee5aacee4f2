"""The runner's channel: what happens when bytes the runner did not write reach it.

Programs cannot open the channel (see test_hostile.py's `write_to_the_runners_fds_via_proc_1` and
friends). These tests get around that seal from outside (even a privileged ``docker exec`` as root cannot:
``no-new-privileges`` refuses it the capabilities), writing as the host's root to the runner's
stdout through the host's ``/proc/PID/fd/1`` while a run is in flight, to check the other half of
the guarantee:
such bytes are the run's verdict (`error`, at once, on one container), not an infrastructure fault
retried on others, and the pool stays healthy.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct

import docker
import pytest

from codestill.config import SandboxConfig
from tools.sandbox import DockerSandbox

SLOW = "import time\ntime.sleep(8)\ndef f():\n    return 1\n"  # would pass, 8 s from now


def _frame(obj: dict) -> bytes:
    body = json.dumps(obj).encode()
    return b"CSr1" + struct.pack(">I", len(body)) + body


STRAY = {
    "text": b"hello from the program\n",
    "huge_length": b"CSr1\xff\xff\xff\xff",
    "reply_to_another_request": _frame({"op": "result", "id": 10**9, "report": ""}),
    "not_json": b"CSr1\x00\x00\x00\x05hello",
}


@pytest.mark.parametrize("kind", list(STRAY))
def test_stray_bytes_during_a_run_are_that_runs_error(portal, kind):
    if os.geteuid() != 0:
        pytest.skip("writing into a container's PID 1 from outside needs root on the engine's host")
    payload = STRAY[kind]

    async def scenario():
        async with DockerSandbox(SandboxConfig(pool_size=1)) as sandbox:
            [before] = await sandbox.health()
            run = asyncio.ensure_future(sandbox.run(SLOW, "assert f() == 1"))
            await asyncio.sleep(0.5)
            pid = docker.from_env().containers.get(before["container"]).attrs["State"]["Pid"]
            with open(f"/proc/{pid}/fd/1", "wb", buffering=0) as channel:
                channel.write(payload)
            result = await run
            [after] = await sandbox.health()
            again = await sandbox.run("def f():\n    return 1\n", "assert f() == 1")
            return result, before, after, again

    result, before, after, again = portal.call(scenario)
    assert result.status == "error", (result.status, result.message)
    assert result.message.startswith("the program wrote into the sandbox runner's channel"), result.message
    assert result.attempts == 1  # not retried on other containers
    assert after["container"] != before["container"]  # that container is gone, a new one serves
    assert after["pids"] == [1]
    assert again.status == "passed"
