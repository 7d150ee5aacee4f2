"""What is particular to the local backend (``LocalSandbox``): its own hygiene and its faults. Its
behaviour is the conformance suite's (``backend`` in test_hostile.py and test_pool.py); what it does
not isolate is written down in tools/sandbox/README.md and never tested on it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from codestill.config import SandboxConfig
from codestill.errors import SandboxError
from tools.sandbox import LocalSandbox
from tools.sandbox._local import ENV

F1 = "def f():\n    return 1\n"


def test_importing_it_loads_no_docker():
    code = ("import sys, json\nfrom tools.sandbox import LocalSandbox\nimport tools.sandbox._local\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[3])
    assert not {m.split(".")[0] for m in json.loads(done.stdout)} & {"docker", "chromadb", "numpy", "torch"}


def test_the_program_sees_a_fixed_environment_and_nothing_of_the_hosts(local, host_secret):
    program = "import os\ndef env():\n    return sorted(os.environ)\n"
    result = local(program, f"assert env() == {sorted({*ENV, 'HOME', 'TMPDIR'})!r}")
    assert result.status == "passed", result.message


def test_no_state_survives_for_the_next_run(local):
    writer = ("import os, tempfile\nopen('marker', 'w').write('x')\ntempfile.mkstemp()\n"
              "os.makedirs('locked/deeper')\nos.chmod('locked', 0)\n" + F1)
    assert local(writer, "assert f() == 1").status == "passed"
    reader = "import os, tempfile\ndef left():\n    return os.listdir('.'), os.listdir(tempfile.gettempdir())\n"
    for _ in range(4):  # both runners of the pool, twice
        result = local(reader, "assert left() == ([], ['work'])")
        assert result.status == "passed", result.message
    for state in local.call(local.sandbox.health):
        assert state["children"] == [] and state["leftovers"] == [], state


def test_a_runner_killed_mid_run_is_an_infra_fault_retried_on_another():
    async def scenario():
        async with LocalSandbox(SandboxConfig(pool_size=1)) as sandbox:
            [runner] = sandbox._all
            run = asyncio.ensure_future(
                sandbox.run("import time\ntime.sleep(1)\ndef f():\n    return 1\n", "assert f() == 1"))
            await asyncio.sleep(0.5)
            os.kill(runner.ready["pid"], signal.SIGKILL)
            result = await run
            [after] = sandbox._all
            return result, runner, after

    result, before, after = asyncio.run(scenario())
    assert (result.status, result.attempts) == ("passed", 2)
    assert after is not before and not Path(before.base).exists()


def test_stray_bytes_on_a_runners_channel_are_that_runs_error():
    if os.geteuid() != 0:
        pytest.skip("writing into the (non-dumpable) runner's stdout from outside needs root")

    async def scenario():
        async with LocalSandbox(SandboxConfig(pool_size=1)) as sandbox:
            [runner] = sandbox._all
            run = asyncio.ensure_future(
                sandbox.run("import time\ntime.sleep(2)\ndef f():\n    return 1\n", "assert f() == 1"))
            await asyncio.sleep(0.5)
            with open(f"/proc/{runner.ready['pid']}/fd/1", "wb", buffering=0) as channel:
                channel.write(b"hello from the program\n")
            result = await run
            again = await sandbox.run(F1, "assert f() == 1")
            return result, again

    result, again = asyncio.run(scenario())
    assert result.status == "error" and result.attempts == 1, (result.status, result.message)
    assert result.message.startswith("the program wrote into the sandbox runner's channel"), result.message
    assert again.status == "passed"


def test_close_removes_every_runner_and_its_folder_and_a_closed_sandbox_refuses_work():
    async def scenario():
        sandbox = LocalSandbox(SandboxConfig(pool_size=2))
        await sandbox.start()
        runners = list(sandbox._all)
        await sandbox.close()
        with pytest.raises(SandboxError, match="closed"):
            await sandbox.run(F1, "assert f() == 1")
        return runners

    runners = asyncio.run(scenario())
    assert all(r.proc.returncode is not None and not Path(r.base).exists() for r in runners)
