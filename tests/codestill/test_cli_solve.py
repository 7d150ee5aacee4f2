"""`codestill solve` as a user runs it: the installed command, the simulated teacher over HTTP, the real
Docker sandbox, an embedded memory, and a pseudo-terminal (pexpect) for the interactive sessions."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from codestill.data import load_mbpp
from codestill.schemas import Trajectory
from codestill.sim import SimConfig, serve_subprocess
from codestill.traces import TraceStore

CLI = str(Path(sys.executable).with_name("codestill"))
PROBLEM = next(p for p in load_mbpp() if p.id == "mbpp/8")  # square_nums: "find squares of individual elements"
PLAN_PROMPT = r"\[a\]ccept / \[e\]dit / \[r\]egenerate"
ACCEPT_PROMPT = r"\[a\]ccept / \[r\]eject"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ACCEPTED = r"verdict: (?:\x1b\[[0-9;]*m)*accepted"  # bold survives NO_COLOR
SHM_MARK = 17  # MiB of /dev/shm: marks the containers of a process this module kills, to remove them


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with serve_subprocess(SimConfig(seed=1)) as url:
        yield url


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200", "NO_COLOR": "1",
            "CODESTILL_MEMORY__PATH": str(tmp_path / "memory"),
            "CODESTILL_TRACES__PATH": str(tmp_path / "traces.sqlite"),
            "CODESTILL_SOLVE__CHECKPOINTS": str(tmp_path / "sessions.sqlite"),
            "CODESTILL_SANDBOX__POOL_SIZE": "1"}


def solve(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "solve", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


@pytest.fixture
def spawn(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., pexpect.spawn]]:
    """Start the command on a pseudo-terminal (``child.logfile_read`` keeps all it printed). One still
    running at the end (a failed test) gets Ctrl-C, so it removes its sandbox containers itself."""
    children: list[pexpect.spawn] = []

    def start(*args: str, command: str = "solve", extra_env: dict[str, str] | None = None) -> pexpect.spawn:
        child = pexpect.spawn(CLI, [command, *args], env={**env, "TERM": "xterm", **(extra_env or {})},
                              cwd=str(tmp_path), encoding="utf-8", timeout=90, dimensions=(50, 200))
        child.logfile_read = io.StringIO()
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.kill(signal.SIGINT)
            with contextlib.suppress(pexpect.TIMEOUT):
                child.expect(pexpect.EOF, timeout=30)
        child.close(force=True)


def finish(child: pexpect.spawn) -> str:
    """Read to the end; the whole output without colour codes."""
    child.expect(pexpect.EOF)
    child.close()
    log = child.logfile_read
    assert isinstance(log, io.StringIO)
    return ANSI.sub("", log.getvalue())


def thread_of(child: pexpect.spawn) -> str:
    child.expect(r"session ([0-9a-f]{12})")
    assert isinstance(child.match, re.Match)
    return child.match.group(1)


def trajectory_of(thread: str, sim_url: str, env: dict[str, str], cwd: Path) -> Trajectory:
    """A finished session, shown again with --thread --json."""
    done = solve("--thread", thread, "--json", "--model", f"openai:codestill-sim@{sim_url}", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return Trajectory.model_validate_json(done.stdout)


def test_solve_streams_the_plan_code_and_verdict_and_json_gives_the_trajectory(sim_url, env, tmp_path):
    spec = f"openai:codestill-sim@{sim_url}"
    done = solve(PROBLEM.instruction, "--model", spec, env=env, cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert "planner: 1 plan" in out and "plan 1" in out and "  1. " in out
    assert f"def {PROBLEM.entry_point}(" in out  # the code, as the coder wrote it and at the end
    assert "sandbox: passed" in out and "critic: accept" in out
    assert "verdict: accepted" in out
    thread, trace = re.search(r"resume with --thread ([0-9a-f]{12})", out), re.search(r"trace ([0-9a-f-]{36})", out)
    assert thread is not None and trace is not None, out
    thread, trace = thread.group(1), trace.group(1)
    with TraceStore(tmp_path / "traces.sqlite") as store:
        tree = store.tree(trace, payloads=False)
    assert tree.root.name == "solve" and tree.root.verdict == "accepted" and (tree.root.task_id or "").startswith("user/")
    assert "sk-test" not in out + done.stderr

    # Again, as JSON only: the memory now holds the module the first run verified.
    again = solve(PROBLEM.instruction, "--model", spec, "--json", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    t = Trajectory.model_validate_json(again.stdout)
    assert t.verdict == "accepted" and f"def {PROBLEM.entry_point}(" in (t.final_code or "")
    assert t.id != f"t-{thread}" and t.memory_hits and t.memory_hits[0].score > 0.5
    assert [p.kind for p in t.plans] == ["forward", "backward"]
    assert again.stderr.strip() == ""


def test_an_unreachable_model_is_one_line_with_the_ways_to_name_one(env, tmp_path):
    done = solve(PROBLEM.instruction, "--model", "openai:x@http://127.0.0.1:9/v1", env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for hint in ("does not answer", "OPENAI_API_KEY", "--model openai:", "hf:", "codestill sim serve",
                 "openai:x@http://127.0.0.1:9/v1"):
        assert hint in lines[0], hint


def test_unknown_thread_and_missing_instruction_are_one_line(env, tmp_path):
    for args in (["--thread", "feedfeedfeed"], []):
        done = solve(*args, env=env, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no session 'feedfeedfeed'" in solve("--thread", "feedfeedfeed", env=env, cwd=tmp_path).stderr


def test_interactive_approve_the_plan_then_accept(sim_url, env, tmp_path, spawn):
    child = spawn(PROBLEM.instruction, "--interactive", "--model", f"openai:codestill-sim@{sim_url}")
    thread = thread_of(child)
    child.expect(PLAN_PROMPT)
    child.sendline("a")
    child.expect(ACCEPT_PROMPT)
    assert f"def {PROBLEM.entry_point}(" in ANSI.sub("", child.before)  # the code to accept was shown
    child.sendline("a")
    out = finish(child)
    assert "verdict: accepted" in out and child.exitstatus == 0, out
    assert trajectory_of(thread, sim_url, env, tmp_path).verdict == "accepted"


def test_interactive_edit_the_plan_with_typed_steps(sim_url, env, tmp_path, spawn):
    steps = ["Square every number of the list with a list comprehension.", "Return the list of squares."]
    child = spawn(PROBLEM.instruction, "--interactive", "--model", f"openai:codestill-sim@{sim_url}")
    thread = thread_of(child)
    child.expect(PLAN_PROMPT)
    child.sendline("e")
    for n, step in enumerate(steps, 1):
        child.expect(f"step {n}: ")
        child.sendline(step)
    child.expect(f"step {len(steps) + 1}: ")
    child.sendline("")
    child.expect(ACCEPT_PROMPT)
    child.sendline("a")
    out = finish(child)
    assert "you edited the plan" in out and "verdict: accepted" in out, out
    t = trajectory_of(thread, sim_url, env, tmp_path)
    forward = [p for p in t.plans if p.kind == "forward"]
    assert tuple(steps) in [p.steps for p in forward]
    # the branch that produced the accepted code ran the typed plan
    used = t.attempts[-1].plan_index
    assert used is not None and t.plans[used].steps == tuple(steps)


def _remove_marked_containers() -> None:
    import docker

    client = docker.from_env()
    try:
        for c in client.containers.list(all=True, filters={"label": "codestill.sandbox"}):
            if c.attrs["HostConfig"].get("ShmSize") == SHM_MARK << 20:
                c.remove(force=True)
    finally:
        client.close()


def test_a_killed_session_resumes_at_the_plan_prompt(sim_url, env, tmp_path, spawn):
    spec = f"openai:codestill-sim@{sim_url}"
    child = spawn(PROBLEM.instruction, "--interactive", "--model", spec,
                  extra_env={"CODESTILL_SANDBOX__SHM_MB": str(SHM_MARK)})
    try:
        thread = thread_of(child)
        child.expect(PLAN_PROMPT)
        child.kill(signal.SIGKILL)
        child.expect(pexpect.EOF)
        child.close()
        assert child.signalstatus == signal.SIGKILL
    finally:
        _remove_marked_containers()  # a killed process cannot remove its sandbox containers

    resumed = spawn("--thread", thread, "--interactive", "--model", spec)
    resumed.expect(f"resuming session {thread}")
    resumed.expect(PLAN_PROMPT)
    resumed.sendline("a")
    resumed.expect(ACCEPT_PROMPT)
    resumed.sendline("a")
    out = finish(resumed)
    assert "verdict: accepted" in out and resumed.exitstatus == 0, out
    t = trajectory_of(thread, sim_url, env, tmp_path)
    assert t.verdict == "accepted" and t.id == f"t-{thread}"
    assert len([p for p in t.plans if p.kind == "forward"]) == 1  # planned once, before the kill


def test_chat_solves_in_a_row_and_shows_hits_and_trace(sim_url, spawn):
    child = spawn("--model", f"openai:codestill-sim@{sim_url}", command="chat")
    child.expect("solve> ")
    child.sendline(PROBLEM.instruction)
    child.expect(ACCEPTED)
    child.expect("solve> ")
    child.sendline("/retry")  # the same task again: this time the memory has its module
    child.expect(ACCEPTED)
    child.expect("solve> ")
    child.sendline("/hits")
    child.expect("solve> ")
    assert PROBLEM.entry_point in child.before and re.search(r"0\.\d{3}|1\.000", child.before)
    child.sendline("/trace")
    child.expect("solve> ")
    shown = ANSI.sub("", child.before)
    assert "model calls" in shown and "critique" in shown and "codestill traces show" in shown
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_session_with_several_samples_labels_each(sim_url, env, tmp_path):
    done = solve(PROBLEM.instruction, "--model", f"openai:codestill-sim@{sim_url}", "--set", "solve.samples=2",
                 env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "[plan 1]" in done.stdout and "[plan 1, sample 2]" in done.stdout
    assert "verdict: accepted" in done.stdout
