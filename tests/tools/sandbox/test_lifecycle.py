"""Containers outlive nothing: a dead client's containers go, and slots that spin do not fail others."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import docker
import docker.errors
import pytest

from codestill.config import SandboxConfig
from codestill.errors import SandboxError
from codestill.schemas import Limits
from tools.sandbox import DockerSandbox
from tools.sandbox._container import container_kwargs
from tools.sandbox._owner import OWNER_LABEL, SANDBOX_LABEL, owner_label

CLIENT = """
import asyncio
from codestill.config import SandboxConfig
from tools.sandbox import DockerSandbox

async def main():
    sandbox = DockerSandbox(SandboxConfig(pool_size=2))
    await sandbox.start()
    print(" ".join(state["container"] for state in await sandbox.health()), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _containers(client: docker.DockerClient, ids: list[str]) -> list[str]:
    found = []
    for cid in ids:
        with contextlib.suppress(docker.errors.NotFound):
            found.append(client.containers.get(cid).status)
    return found


def test_a_sigkilled_client_leaves_no_container(portal):
    client = docker.from_env()
    proc = subprocess.Popen([sys.executable, "-c", CLIENT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ids = proc.stdout.readline().split()
        assert len(ids) == 2, ids
        assert _containers(client, ids) == ["running", "running"]
        labels = {client.containers.get(cid).labels[OWNER_LABEL] for cid in ids}
        assert labels == {owner_label(proc.pid)}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The engine closes the runner's stdin when the attach connection goes; the runner exits and
    # the engine removes the container. Wait for that (bounded), then start a pool as the next run would.
    deadline = time.monotonic() + 30
    while _containers(client, ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _containers(client, ids) == []

    async def next_start():
        async with DockerSandbox(SandboxConfig(pool_size=1)) as sandbox:
            return await sandbox.run("def f():\n    return 1\n", "assert f() == 1")

    assert portal.call(next_start).status == "passed"
    left = client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={labels.pop()}"})
    assert left == []


def test_orphans_of_dead_owners_are_reaped_at_pool_start(portal):
    """A container whose runner never got its client (so never saw its input close) is removed at
    the next pool start when its owner is gone; a live owner's and another machine's are not."""
    client = docker.from_env()
    dead = subprocess.Popen(["true"])
    dead.wait()
    owners = {
        "dead": owner_label(dead.pid).rsplit("/", 1)[0] + "/1",
        "live": owner_label(),
        "elsewhere": "another-machine/" + owner_label().split("/", 1)[1],
    }
    made = {}
    try:
        for name, owner in owners.items():
            kwargs = container_kwargs(SandboxConfig())
            kwargs["labels"] = {SANDBOX_LABEL: "1", OWNER_LABEL: owner}
            container = client.containers.create(**kwargs)
            container.start()
            made[name] = container.id

        async def start():
            sandbox = DockerSandbox(SandboxConfig(pool_size=1))
            await sandbox.start()
            await sandbox.close()
            return sandbox.reaped

        reaped = portal.call(start)
        assert reaped >= 1
        assert _containers(client, [made["dead"]]) == []
        assert _containers(client, [made["live"], made["elsewhere"]]) == ["running", "running"]
    finally:
        for cid in made.values():
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_container(cid, force=True)


def test_a_slow_correct_program_passes_while_other_slots_spin(portal):
    """CPU-time limits: two slots burn their whole budget in infinite loops while a correct
    program that needs 1.5 s of CPU (on any machine) of its 2 s runs beside them, and passes,
    although on two cores it takes longer than 2 s of wall time."""
    slow = ("import time\ndef work():\n    while time.process_time() < 1.5:\n        pass\n"
            "    return 42\n")

    async def scenario():
        async with DockerSandbox(SandboxConfig(pool_size=3)) as sandbox:
            spin = [sandbox.run("while True:\n    pass\n", "assert True", Limits(cpu_s=4.0)) for _ in range(2)]
            return await asyncio.gather(sandbox.run(slow, "assert work() == 42", Limits(cpu_s=2.0)), *spin)

    result, *spinners = portal.call(scenario)
    assert [s.status for s in spinners] == ["timeout", "timeout"]
    assert result.status == "passed", result.message
    if len(os.sched_getaffinity(0)) < 3:
        assert result.wall_s > result.cpu_s  # it did share the CPU with the spinners


STARTER = """
import docker
from codestill.config import SandboxConfig
from tools.sandbox._container import _create

client = docker.from_env()
cid = _create(client, SandboxConfig())
sock = client.api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
client.api.start(cid)
print(cid, flush=True)
input()  # killed here: the runner's source never sent
"""


def test_a_client_killed_before_sending_the_runner_leaves_no_container():
    """Killed between starting a container and handing it the runner's source: the bootstrap sees
    its input close and exits (it used to spin on end of input, at 100 % CPU, forever)."""
    client = docker.from_env()
    proc = subprocess.Popen([sys.executable, "-c", STARTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        cid = proc.stdout.readline().strip()
        assert _containers(client, [cid]) == ["running"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    try:
        deadline = time.monotonic() + 30
        while _containers(client, [cid]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _containers(client, [cid]) == []
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_container(cid, force=True)


def test_a_start_that_is_given_up_leaves_no_container(portal):
    """The pool stops waiting for its containers (their start deadline passed) while the engine
    still makes them: each is removed when it arrives, not kept alive until this process exits
    by a reply nobody reads (the raised error's traceback still refers to it here)."""
    client = docker.from_env()
    since = time.time() - 1
    sandbox = DockerSandbox(SandboxConfig(pool_size=2, start_timeout_s=0.01))
    with pytest.raises(SandboxError, match="Could not start the sandbox pool") as raised:
        portal.call(sandbox.start)
    events = client.events(since=since, until=time.time() + 30, decode=True,
                           filters={"type": "container", "label": f"{OWNER_LABEL}={owner_label()}"})
    created, gone = set(), set()
    for event in events:
        (created if event["Action"] == "create" else gone if event["Action"] == "destroy" else set()).add(
            event["id"])
        if created and created <= gone:
            break
    events.close()
    assert raised.value is not None  # held until here, with everything its traceback refers to
    assert created, "no container was even created: the test proves nothing"
    assert created <= gone
