"""The pools under load (the warm Docker pool and the local one), and the warm pool under infrastructure faults."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import docker
import pytest

from codestill.config import SandboxConfig
from codestill.errors import EngineUnavailable, ImageMissing, SandboxError
from codestill.schemas import Limits
from tools.sandbox import DockerSandbox


@pytest.fixture(params=["warm", "local"])
def pool(request):
    """The backends that keep a pool of runners: load is shared between them."""
    return request.getfixturevalue(request.param)


def test_64_concurrent_runs_from_one_loop(pool):
    async def many():
        jobs = []
        for i in range(64):
            program = f"def f(x):\n    return x * {i}\n"
            expected = i * 3 if i % 2 == 0 else i * 3 + 1  # odd ones are wrong on purpose
            jobs.append(pool.sandbox.run(program, f"assert f(3) == {expected}\nassert f(0) == 0"))
        return await asyncio.gather(*jobs)

    results = pool.call(many)
    assert [r.status for r in results] == ["passed" if i % 2 == 0 else "failed" for i in range(64)]
    assert len({r.run_id for r in results}) == 64
    for i, r in enumerate(results):
        if i % 2:
            assert r.message == f"`assert f(3) == {i * 3 + 1}`: {i * 3} == {i * 3 + 1} is False"


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_slow_correct_program_passes_on_a_busy_machine(pool):
    """Time-outs are judged on CPU time: competing for the CPU does not fail a correct program."""
    hogs = [multiprocessing.Process(target=_spin, args=(8.0,)) for _ in range(3)]
    for h in hogs:
        h.start()
    try:
        program = "def work():\n    n = 0\n    for i in range(6_000_000):\n        n += i\n    return n\n"
        result = pool(program, "assert work() == 17999997000000", Limits(cpu_s=2.0, wall_s=7.5))
    finally:
        for h in hogs:
            h.terminate()
    assert result.status == "passed", result.message
    assert result.wall_s > result.cpu_s  # it did wait for the CPU


def test_a_container_killed_mid_run_is_an_infra_fault_retried_elsewhere(portal):
    async def scenario():
        async with DockerSandbox(SandboxConfig(pool_size=1)) as sandbox:
            [state] = await sandbox.health()
            run = asyncio.ensure_future(
                sandbox.run("import time\ntime.sleep(1.5)\ndef f():\n    return 1\n", "assert f() == 1"))
            await asyncio.sleep(0.5)
            docker.from_env().containers.get(state["container"]).kill()
            result = await run
            [after] = await sandbox.health()
            return result, state, after

    result, before, after = portal.call(scenario)
    assert result.status == "passed"
    assert result.attempts == 2
    assert after["container"] != before["container"]


def test_engine_unreachable_is_one_clear_error(portal):
    sandbox = DockerSandbox(SandboxConfig(docker_host="unix:///nonexistent/docker.sock"))
    with pytest.raises(EngineUnavailable, match=r"No Docker engine answers at unix:///nonexistent/docker.sock.*"
                       r"codestill sandbox setup"):
        portal.call(sandbox.start)


def test_missing_image_is_one_clear_error(portal):
    sandbox = DockerSandbox(SandboxConfig(image="codestill-sandbox:no-such-tag"))
    with pytest.raises(ImageMissing, match=r"codestill-sandbox:no-such-tag is not built.*codestill sandbox build"):
        portal.call(sandbox.start)


def test_a_closed_sandbox_refuses_work(portal):
    async def scenario():
        sandbox = DockerSandbox(SandboxConfig(pool_size=1))
        await sandbox.start()
        await sandbox.close()
        return await sandbox.run("def f():\n    return 1\n", "assert f() == 1")

    with pytest.raises(SandboxError, match="closed"):
        portal.call(scenario)


def test_tainted_containers_are_replaced_and_clean_ones_reused(portal):
    async def scenario():
        async with DockerSandbox(SandboxConfig(pool_size=1)) as sandbox:
            first = (await sandbox.health())[0]["container"]
            await sandbox.run("def f():\n    return 1\n", "assert f() == 1")
            reused = (await sandbox.health())[0]["container"]
            await sandbox.run("while True:\n    pass\n", "assert True", Limits(cpu_s=0.5))
            replaced = (await sandbox.health())[0]["container"]
            return first, reused, replaced

    first, reused, replaced = portal.call(scenario)
    assert first == reused
    assert replaced != first
