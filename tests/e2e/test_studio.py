"""`langgraph dev` as Studio talks to it: the in-memory LangGraph API server started by the installed
CLI on the repository's langgraph.json, driven over real HTTP with ``langgraph_sdk``. The solve graph
runs against the simulated teacher, the real Docker sandbox and an embedded memory, all built by
``codestill.run.studio`` from CODESTILL_* settings; the run pauses at both interrupts and is resumed
with the answers a person gives ``codestill solve --interactive``.

Nothing may leave the machine: LangSmith tracing, the CLI's analytics and the server's version check
are switched off in the server's environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from codestill.data import load_mbpp
from codestill.schemas import Trajectory
from codestill.sim import SimConfig, serve_subprocess
from codestill.traces import TraceStore

if TYPE_CHECKING:
    from langgraph_sdk.client import SyncLangGraphClient

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = str(Path(sys.executable).with_name("langgraph"))
PROBLEM = next(p for p in load_mbpp() if p.id == "mbpp/8")  # square_nums
SHM_MARK = 19  # MiB of /dev/shm: marks this server's sandbox containers, removed if it dies without closing them
OFFLINE = {"LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
           "LANGGRAPH_NO_VERSION_CHECK": "true"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked_containers(remove: bool = False) -> list[str]:
    """This server's sandbox containers (by their /dev/shm size); ``remove``: remove them too."""
    import docker

    client = docker.from_env()
    try:
        found = [c for c in client.containers.list(all=True, filters={"label": "codestill.sandbox"})
                 if c.attrs["HostConfig"].get("ShmSize") == SHM_MARK << 20]
        for c in found if remove else ():
            c.remove(force=True)
        return [c.name for c in found if c.name]
    finally:
        client.close()


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C to the server's process group (its lifespan closes the sandbox pool), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        _stop(self.proc)


@contextlib.contextmanager
def langgraph_dev(tmp_path: Path, settings: dict[str, str], *flags: str) -> Iterator[Server]:
    """`langgraph dev` on a free port with the repository's langgraph.json, its codestill settings
    ``settings`` (CODESTILL_* and nothing of the caller's), run from ``tmp_path`` (the in-memory server
    keeps its state in ./.langgraph_api). Stopped at the end whatever happens; its containers removed."""
    port = _free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "CODESTILL_")) and k != "OPENAI_API_KEY"}
    env.update(OFFLINE, CODESTILL_SANDBOX__SHM_MB=str(SHM_MARK), **settings)
    with log.open("wb") as out:
        proc = subprocess.Popen([LANGGRAPH, "dev", "--no-browser", "--no-reload", *flags, "--host", "127.0.0.1",
                                 "--port", str(port), "--config", str(ROOT / "langgraph.json")],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"langgraph dev exited {proc.returncode}:\n{log.read_text()[-4000:]}"
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ok", timeout=2) as answer:
                if answer.status == 200:
                    break
            assert time.monotonic() < deadline, f"langgraph dev did not answer:\n{log.read_text()[-4000:]}"
            time.sleep(0.2)
        yield Server(url, proc)
    except BaseException:
        print(log.read_text()[-6000:])  # shown by pytest when the test fails
        raise
    finally:
        _stop(proc)
        _marked_containers(remove=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The server as the README starts it (--allow-blocking), on the sim and on ``tmp_path``'s stores."""
    with serve_subprocess(SimConfig(seed=1)) as sim_url:
        settings = {"CODESTILL_LLM__MODEL": f"openai:codestill-sim@{sim_url}",
                    "CODESTILL_MEMORY__PATH": str(tmp_path / "memory"),
                    "CODESTILL_TRACES__PATH": str(tmp_path / "traces.sqlite"),
                    "CODESTILL_SOLVE__CHECKPOINTS": str(tmp_path / "sessions.sqlite"),
                    "CODESTILL_SANDBOX__POOL_SIZE": "1"}
        with langgraph_dev(tmp_path, settings, "--allow-blocking") as server:
            yield server


def _wait(client: SyncLangGraphClient, thread_id: str, graph: str, **options: Any) -> dict[str, Any]:
    """The run's final state (one run: a dict, never a list)."""
    out = client.runs.wait(thread_id, graph, **options)
    assert isinstance(out, dict), out
    return out


def _interrupt(client, thread_id: str) -> dict:
    """The one interrupt the thread waits on (its payload), with the node it paused in."""
    state = client.threads.get_state(thread_id)
    waiting = [(t["name"], i["value"]) for t in state["tasks"] for i in t.get("interrupts", [])]
    assert len(waiting) == 1, state
    node, value = waiting[0]
    return {"node": node, **value}


def test_a_solve_run_from_the_http_api_pauses_resumes_and_is_accepted(server, tmp_path):
    """Create a thread, run the solve graph with interrupts on, answer both pauses, get the verdict."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server.url, api_key=None)
    assistants = {a["graph_id"]: a["assistant_id"] for a in client.assistants.search(limit=10)}
    assert {"solve", "evol", "selfalign"} <= set(assistants)
    schemas = client.assistants.get_schemas(assistants["solve"])
    context, given = schemas["context_schema"], schemas["input_schema"]
    assert context is not None and context["properties"]["interactive"]["default"] is True
    assert given is not None and "task" in given["properties"]

    thread = client.threads.create()["thread_id"]
    task = PROBLEM.to_task().model_dump(mode="json")
    out = _wait(client, thread, "solve", input={"task": task}, context={"interactive": True},
                           raise_error=True)
    assert "__interrupt__" in out, out
    plans = _interrupt(client, thread)
    assert plans["node"] == "review_plans" and plans["kind"] == "plans" and plans["plans"][0]["steps"], plans

    # The answers `codestill solve --interactive` gives: accept the plans, then accept the code.
    client.runs.wait(thread, "solve", command={"resume": {"action": "accept"}}, raise_error=True)
    accept = _interrupt(client, thread)
    assert accept["node"] == "confirm" and accept["kind"] == "accept", accept
    assert f"def {PROBLEM.entry_point}(" in accept["code"]

    out = _wait(client, thread, "solve", command={"resume": {"action": "accept"}}, raise_error=True)
    assert "__interrupt__" not in out
    trajectory = Trajectory.model_validate(out["trajectory"])
    assert trajectory.verdict == "accepted", trajectory.reason
    assert trajectory.task.id == PROBLEM.id and f"def {PROBLEM.entry_point}(" in (trajectory.final_code or "")
    assert trajectory.id == f"t-{thread}"
    assert client.threads.get_state(thread)["next"] == []

    # The instruction graphs run from plain JSON too: an evolution of the instruction, and instructions
    # written from a seed function.
    evolved = _wait(client, client.threads.create()["thread_id"], "evol", input={"task": PROBLEM.instruction},
                               raise_error=True)
    assert evolved.get("made") or evolved.get("reason"), evolved
    seed = {"id": "demo:add", "name": "add", "signature": "def add(a, b)", "code": "def add(a, b):\n    return a + b\n"}
    written = _wait(client, client.threads.create()["thread_id"], "selfalign", input={"seed": seed},
                               raise_error=True)
    assert written["tasks"] and written["tasks"][0]["source"] == "selfalign", written

    # Stopped like Ctrl-C: the server's lifespan closed the sandbox pool, so no container is left.
    assert _marked_containers(), "the runs used the sandbox"
    server.stop()
    assert server.proc.returncode is not None and not _marked_containers()

    # The three runs went to codestill's own trace store too, as a session's do; the last one ended it.
    with TraceStore(tmp_path / "traces.sqlite") as store:
        runs = store.list_runs()
    assert len(runs) == 3 and {r.graph for r in runs} == {"solve"}, runs
    assert PROBLEM.id in {r.task_id for r in runs} and "accepted" in {r.verdict for r in runs}, runs


def test_without_allow_blocking_a_run_fails_at_once_naming_the_flag(tmp_path):
    from langgraph_sdk import get_sync_client

    settings = {"CODESTILL_LLM__MODEL": "openai:x@http://127.0.0.1:9/v1",
                "CODESTILL_MEMORY__PATH": str(tmp_path / "memory"),
                "CODESTILL_TRACES__PATH": str(tmp_path / "traces.sqlite"),
                "CODESTILL_SOLVE__CHECKPOINTS": str(tmp_path / "sessions.sqlite")}
    with langgraph_dev(tmp_path, settings) as server:
        client = get_sync_client(url=server.url, api_key=None)
        thread = client.threads.create()["thread_id"]
        out = _wait(client, thread, "solve", input={"task": PROBLEM.instruction}, raise_error=False)
        assert out["__error__"]["error"] == "RunError", out
        assert "ConfigError: " in out["__error__"]["message"], out
        assert "langgraph dev --allow-blocking" in out["__error__"]["message"], out
    assert not (tmp_path / "traces.sqlite").exists()  # nothing was opened
