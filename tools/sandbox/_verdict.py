"""From the runner's raw facts to an ExecResult. Pure: tested without Docker too.

A pass needs the harness's complete report: one record per test the *host* counted, each
carrying this run's nonce, on the report channel (fd 3, not stdout), then ``done``. Anything
short of that (an early ``sys.exit``/``os._exit``, a crash, a flooded or forged channel) is
not a pass, whatever the program printed.
"""

from __future__ import annotations

import json
import signal

from codestill.schemas import ExecResult, Limits, TestResult
from tools.sandbox._tests import Unit


def _signal_name(num: int | None) -> str | None:
    if num is None:
        return None
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _parse_report(text: str, nonce: str) -> tuple[list[dict], bool]:
    """The records, and whether the channel looks untampered."""
    records, clean = [], True
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            clean = False
            continue
        if not isinstance(rec, dict) or rec.get("nonce") != nonce:
            clean = False
            continue
        records.append(rec)
    return records, clean


def tainted(raw: dict) -> bool:
    """Whether the container must be replaced rather than reused."""
    return bool(
        raw.get("stopped_by") or raw.get("signal") or raw.get("oom") or raw.get("leftover_processes")
        or raw.get("pids_after", 1) != 1 or raw.get("left_files") or raw.get("sysv_ipc")
    )


def build_result(raw: dict, units: list[Unit], nonce: str, limits: Limits, run_id: str,
                 attempts: int = 1) -> ExecResult:
    records, clean = _parse_report(raw.get("report", ""), nonce)
    load = next((r for r in records if r.get("kind") == "load"), None)
    done = any(r.get("kind") == "done" and r.get("n") == len(units) for r in records) and clean
    by_index = {r["i"]: r for r in records if r.get("kind") == "test" and isinstance(r.get("i"), int)}
    tests = tuple(
        TestResult(
            name=u.name,
            outcome=by_index[i]["outcome"] if i in by_index else "not_run",
            message=(by_index[i].get("message") or ("assertion failed"
                     if by_index[i]["outcome"] == "failed" else "")) if i in by_index else "",
            duration_s=float(by_index[i].get("duration_s", 0.0)) if i in by_index else 0.0,
        )
        for i, u in enumerate(units) if u.is_test
    )
    status, message = _status(raw, units, records, by_index, load, done, clean, limits)
    return ExecResult(
        run_id=run_id, status=status, message=message, tests=tests,
        stdout=raw.get("stdout", ""), stderr=raw.get("stderr", ""),
        stdout_truncated_bytes=raw.get("stdout_dropped", 0), stderr_truncated_bytes=raw.get("stderr_dropped", 0),
        exit_code=raw.get("exit_code"), signal=_signal_name(raw.get("signal")),
        cpu_s=raw.get("cpu_s", 0.0), wall_s=raw.get("wall_s", 0.0), attempts=attempts, limits=limits,
    )


def _status(raw, units, records, by_index, load, done, clean, limits):
    cpu, sig = raw.get("cpu_s", 0.0), raw.get("signal")
    wall = raw.get("stopped_by") == "wall"
    # A program that ignores SIGXCPU is killed by the hard limit a CPU second later; on a busy
    # machine the wall deadline can come first. Past its CPU budget, the CPU limit is the cause.
    if sig == signal.SIGXCPU or ((sig == signal.SIGKILL or wall) and cpu >= limits.cpu_s - 0.05):
        return "timeout", f"time limit exceeded: CPU {limits.cpu_s:g} s"
    if wall:
        return "timeout", f"time limit exceeded: wall clock {limits.wall_limit_s:g} s (CPU {cpu:.2f} s)"
    timeouts = [r for r in records if r.get("exc") == "Timeout"]
    if timeouts:
        return "timeout", f"time limit exceeded: CPU {limits.cpu_s:g} s (a case)"
    if raw.get("oom") or any(r.get("exc") == "MemoryError" for r in records):
        return "oom", "memory limit exceeded" + ("" if raw.get("oom") else ": MemoryError")
    if raw.get("stopped_by") == "output":
        return "killed", f"output limit exceeded: more than {limits.output_bytes} bytes on stdout/stderr"
    if raw.get("stopped_by") == "report":
        return "error", "the test report channel was flooded by the program"
    if sig:
        return "killed", f"killed by signal {_signal_name(sig)}"
    if not clean:
        return "error", "the test report channel was written to by the program; the report is void"
    if load is not None and not load.get("ok"):
        return "error", f"the program failed to load: {load.get('message', '')}"
    if not done:
        return "error", f"the program exited (code {raw.get('exit_code')}) before the tests completed"
    if raw.get("leftover_processes"):
        n = raw["leftover_processes"]
        return "killed", f"the program left {n} process{'es' if n > 1 else ''} running; killed after the run"
    for i, u in enumerate(units):
        rec = by_index.get(i, {})
        if not u.is_test and rec.get("outcome") != "passed":
            return "error", f"test setup failed at `{u.name}`: {rec.get('message', 'not run')}"
    for outcome in ("error", "failed"):
        for i, u in enumerate(units):
            rec = by_index.get(i, {})
            if u.is_test and rec.get("outcome") == outcome:
                detail = rec.get("message") or "assertion failed"
                return outcome, f"`{u.name}`: {detail}"
    return "passed", ""
