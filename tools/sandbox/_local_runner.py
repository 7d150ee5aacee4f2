"""The runner's loop in a local process, for ``LocalSandbox``: run as a script, never imported.

    python -I _local_runner.py ROOT MEMORY_BYTES

It loads ``_runner.py`` (read from beside this file, with builtins of its own, as the container's
bootstrap does) and serves the same frames on stdin/stdout with the same ``_execute``: a fresh
forked child per run, the same harness, the same report. What only PID 1 of a container may do is
replaced, since here it would reach the host:

- the sweep after a run kills and reaps this process's descendants (it is a child subreaper, so
  orphans, daemonised ones included, become its children), never ``kill(-1)``;
- the folders wiped after a run are ``ROOT`` (the runs' work folder is ``ROOT/work``), not ``/tmp``;
- the OOM-kill counter, the process list and SysV IPC are the host's: not read (``oom`` is never
  reported; a program that runs out of address space gets ``MemoryError``, which is ``oom`` too).

Standard library only, like the runner. It exits when its input closes, removing ``ROOT``.
"""

import builtins
import contextlib
import ctypes
import gc
import os
import resource
import shutil
import signal
import sys
import time
import types
from typing import Any

_PR_SET_CHILD_SUBREAPER = 36


def load_runner() -> Any:
    """``_runner.py`` as a module that is not in ``sys.modules`` (a program must not find it there)
    and whose functions see a private copy of the builtins."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_runner.py")
    with open(path, "rb") as f:
        source = f.read()
    runner = types.ModuleType("_cs_local_runner")  # not "_cs_runner": that name starts PID 1's main()
    runner.__dict__["__builtins__"] = dict(vars(builtins))
    exec(compile(source, "_runner.py", "exec"), runner.__dict__)
    return runner


def children(me: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
        return found
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: read every process's parent
        pass
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def sweep() -> int:
    """Kill and reap every descendant; return how many there were (the runner's ``_sweep``, for a
    process that is not a namespace's init)."""
    me, reaped = os.getpid(), 0
    for _ in range(10_000):
        for pid in children(me):
            for kill in (os.killpg, os.kill):  # its group first: the harness's is its own session
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return reaped
            if pid == 0:
                break
            reaped += 1
        time.sleep(0.0005)
    return reaped


def main() -> None:
    root, memory = sys.argv[1], int(sys.argv[2])
    base = os.path.dirname(root)
    runner = load_runner()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at the terminal is the host's to handle
    for name in runner.PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    me = os.getpid()
    runner.WORK_ROOTS = (root,)
    runner._sweep = sweep
    runner._oom_kills = lambda: -1
    runner._pids = lambda: [me]
    runner._sysv_ipc_objects = lambda: 0
    libc = ctypes.CDLL(None, use_errno=True)
    subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    sealed = runner._seal()
    if memory > 0:  # inherited by every run's child: a bound on runaway allocation, not a cgroup
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    os.makedirs(root, exist_ok=True)
    runner._WATCHED = runner._watch()
    runner._TRUSTED = runner._trusted_classes()
    gc.freeze()
    runner._write_all(1, runner.encode_frame({"op": "ready", "pid": me, "python": sys.version.split()[0],
                                              "sealed": sealed, "subreaper": subreaper}))
    try:
        while True:
            req = runner._read_frame(0)
            if req is None or req.get("op") == "exit":
                return
            if req.get("op") == "run":
                reply = runner._execute({**req, "work": os.path.join(root, "work")})
            elif req.get("op") == "health":
                reply = {"op": "health", "children": children(me), "leftovers": sorted(os.listdir(root)),
                         "rss_kb": runner._rss_kb()}
            else:
                reply = {"op": "error", "message": f"unknown op {req.get('op')!r}"}
            reply["id"] = req.get("id")
            runner._write_all(1, runner.encode_frame(reply))
    finally:
        sweep()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
