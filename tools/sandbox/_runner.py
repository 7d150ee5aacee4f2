"""The in-container runner: PID 1 of every sandbox container, and the test harness.

This file is shipped as source over the container's stdin when the container starts
(so changing it needs no image rebuild) and must therefore use the standard library only
and run on the image's Python (Debian bookworm: 3.11). The host imports it only for the
framing helpers; nothing runs at import time.

Why PID 1: the kernel drops every signal sent to a namespace's init from inside the
namespace unless init installed a handler, so a program's ``kill -1`` or
``os.kill(1, SIGKILL)`` cannot take the runner down, and orphans are re-parented to us,
so one ``waitpid(-1)`` loop reaps (and counts) everything a program left behind.

Protocol (stdin -> runner -> stdout): frames of a 4-byte magic, a 4-byte big-endian length
and UTF-8 JSON. Requests: ``{"op": "run", ...}``, ``{"op": "health"}``. Every request gets one
reply. The runner is the only process that can write that stream: it makes itself
non-dumpable before any program runs, so no other process (all share uid 10001) may open
``/proc/1/fd/*``, ``pidfd_getfd`` it or ptrace it, and each child closes every fd of the
runner's. The magic lets the host tell a stray write from a reply at once.
"""

from __future__ import annotations

if __name__ == "_cs_runner":
    # Private builtins. CPython binds a function's builtins when the function is created, so
    # every function below looks up exec, compile, len, AssertionError ... in this copy, not in
    # the ``builtins`` module that the program under test can rebind.
    import builtins as _builtins

    __builtins__ = dict(vars(_builtins))

import base64
import contextlib
import errno
import json
import os
import resource
import select
import signal
import struct
import sys
import time

# For type checkers only: the name, not the typing module (the runner imports nothing it does not use).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAGIC = b"CSr1"
HEADER = struct.Struct(">4sI")
MAX_FRAME = 64 << 20
# Callables whose rebinding says nothing about a verdict (the interpreter's hooks).
_UNWATCHED = {("sys", "excepthook"), ("sys", "displayhook"), ("sys", "breakpointhook"),
              ("sys", "unraisablehook"), ("threading", "excepthook")}
_WATCHED: dict = {}  # top-level module -> [(namespace, snapshot, label prefix)]: set once in main()
_DUNDERS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__contains__", "__hash__",
            "__iter__", "__len__", "__getitem__")
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made at run time (every class a program defines)
_TRUSTED: dict = {}  # the standard library's classes, set once in main()
WORK_ROOTS = ("/tmp", "/dev/shm", "/dev/mqueue")
# Modules imported once in the runner so that every forked child has them for free.
PRELOAD = ["array", "bisect", "collections", "copy", "dataclasses", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "io", "itertools", "json", "math", "operator", "random", "re", "statistics", "string", "textwrap", "typing", "unicodedata", "multiprocessing", "multiprocessing.pool", "threading", "subprocess", "socket", "ctypes"]


def encode_frame(obj: object) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(MAGIC, len(data)) + data


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(fd: int) -> dict | None:
    head = _read_exact(fd, HEADER.size)
    if head is None:
        return None
    magic, size = HEADER.unpack(head)
    if magic != MAGIC or size > MAX_FRAME:
        return None  # only the host writes our stdin: a bad frame means it is gone or broken
    body = _read_exact(fd, size)
    return None if body is None else json.loads(body)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --------------------------------------------------------------------------- the runner


class _Capture:
    """Keeps the last ``cap`` bytes of a stream and counts what it dropped."""

    def __init__(self, cap: int) -> None:
        self.cap, self.buf, self.total = cap, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buf += chunk
        if len(self.buf) > 2 * self.cap:
            del self.buf[: len(self.buf) - self.cap]

    def text(self) -> str:
        data = bytes(self.buf[-self.cap :]) if self.cap else b""
        return data.decode("utf-8", "replace")

    @property
    def dropped(self) -> int:
        return self.total - min(len(self.buf), self.cap)


def _oom_kills() -> int:
    """The memory cgroup's OOM-kill counter (cgroup v1 or v2), or -1 when unreadable."""
    for path, key in (
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    ):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except OSError:
            continue
    return -1


def _pids() -> list[int]:
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def _sysv_ipc_objects() -> int:
    count = 0
    for kind in ("shm", "sem", "msg"):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                count += max(0, len(f.read().splitlines()) - 1)
        except OSError:
            pass
    return count


def _sweep() -> int:
    """Kill and reap every process but ourselves; return how many there were."""
    reaped = 0
    for _ in range(10_000):
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)  # everyone we may signal, except ourselves (init)
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


def _rmtree_contents(root: str) -> int:
    """Delete everything under root (not root itself); return entries left."""

    def remove(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if st.st_mode & 0o170000 == 0o040000:  # a directory: make it ours to empty
            with contextlib.suppress(OSError):
                os.chmod(path, 0o700)
            for name in os.listdir(path):
                remove(os.path.join(path, name))
            os.rmdir(path)
        else:
            os.unlink(path)

    try:
        names = os.listdir(root)
    except OSError:
        return 0
    for name in names:
        with contextlib.suppress(OSError):
            remove(os.path.join(root, name))
    try:
        return len(os.listdir(root))
    except OSError:
        return 0


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _health() -> dict:
    return {
        "op": "health",
        "pids": _pids(),
        "leftovers": {root: sorted(os.listdir(root)) for root in WORK_ROOTS if os.path.isdir(root)},
        "sysv_ipc": _sysv_ipc_objects(),
        "rss_kb": _rss_kb(),
        "oom_kills": _oom_kills(),
    }


def _execute(req: dict) -> dict:
    limits = req["limits"]
    cap, out_limit = limits["capture_bytes"], limits["output_bytes"]
    t0 = time.monotonic()
    oom_before = _oom_kills()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            for fd in (out_r, err_r, rep_r):
                os.close(fd)
            _child(req, out_w, err_w, rep_w)
        finally:
            os._exit(70)
    for fd in (out_w, err_w, rep_w):
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    caps = {out_r: _Capture(cap), err_r: _Capture(cap), rep_r: _Capture(limits["report_bytes"])}
    poller = select.poll()
    for fd in (*caps, pidfd):
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    deadline = t0 + limits["wall_s"]
    stopped_by = None  # "wall" | "output" | "report"
    open_fds = set(caps)
    exited = False
    while not exited:
        left = deadline - time.monotonic()
        if left <= 0:
            stopped_by = "wall"
            break
        for fd, _ in poller.poll(left * 1000):
            if fd == pidfd:
                exited = True
                continue
            if _drain(fd, caps[fd], 1 << 16) is None:
                poller.unregister(fd)
                open_fds.discard(fd)
        if caps[out_r].total + caps[err_r].total > out_limit:
            stopped_by = "output"
            break
        if caps[rep_r].total > caps[rep_r].cap:
            stopped_by = "report"
            break
    if stopped_by:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            with contextlib.suppress(OSError):
                target()
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    for fd in open_fds:  # what the child wrote before it exited is still in the pipes
        _drain(fd, caps[fd], out_limit)
    leftover = _sweep()
    for fd in (*caps, pidfd):
        os.close(fd)
    left_files = sum(_rmtree_contents(root) for root in WORK_ROOTS)
    oom_after = _oom_kills()
    return {
        "op": "result",
        "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "stopped_by": stopped_by,
        "oom": oom_after > oom_before >= 0,
        "report": caps[rep_r].text() if caps[rep_r].dropped == 0 else "",
        "stdout": caps[out_r].text(),
        "stderr": caps[err_r].text(),
        "stdout_dropped": caps[out_r].dropped,
        "stderr_dropped": caps[err_r].dropped,
        "leftover_processes": leftover,
        "pids_after": len(_pids()),
        "left_files": left_files,
        "sysv_ipc": _sysv_ipc_objects(),
    }


def _drain(fd: int, capture: _Capture, budget: int) -> int | None:
    """Read what is available (up to budget); None at end of file."""
    got = 0
    while got < budget:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return got
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            return None
        if not chunk:
            return None
        capture.add(chunk)
        got += len(chunk)
    return got


# --------------------------------------------------------------------------- the child


def _child(req: dict, out_w: int, err_w: int, rep_w: int) -> None:
    """Set up the forked child's process state, then run the harness. Never returns."""
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # what a fresh python has
    devnull = os.open("/dev/null", os.O_RDONLY)
    for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2), (rep_w, 3)):
        os.dup2(src, dst)
    os.closerange(4, 1 << 16)
    limits = req["limits"]
    cpu = max(1, int(limits["cpu_s"] + 0.999))
    # SIGXCPU at the soft limit; a program that ignores it is killed at the hard limit.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:  # the OOM killer takes the program, not the runner
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    work = req.get("work", "/tmp/work")  # another folder only outside a container (tools/sandbox/_local.py)
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    os.environ["HOME"] = work
    _reopen_stdio()
    program = base64.b64decode(req["program"])
    if req["mode"] == "io":
        _harness_io(program, req["cases"], req["nonce"])
    else:
        _harness_asserts(program, req["units"], req["nonce"], req.get("pinned", []), req.get("modules", []),
                         req.get("bound", []))


def _reopen_stdio() -> None:
    """Fresh Python stdio over fds 0-2 (just redirected), sharing no buffer with the runner's."""
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)


def _reporter(nonce: str):
    """A closure over the report channel (fd 3), captured before any program code runs.

    It serialises with C functions taken now (``json.dumps`` reads ``json._default_encoder``,
    which a program can replace), so what it writes is what the harness decided.
    """
    from _json import encode_basestring_ascii as esc

    write, getpid, exit_, me = os.write, os.getpid, os._exit, os.getpid()
    int_repr, float_repr, get_type = int.__repr__, float.__repr__, type
    tail = ',"nonce":' + esc(nonce) + "}\n"

    def value(v: Any) -> str:  # dispatched on its exact type below
        t = get_type(v)
        if t is bool:
            return "true" if v else "false"
        if t is int:
            return int_repr(v)
        if t is float:
            return float_repr(v)
        if v is None:
            return "null"
        if t is list:
            return "[" + ",".join([value(x) for x in v]) + "]"
        return esc(v)  # a str (or a subclass: esc reads its characters, calls none of its methods)

    def emit(record: dict) -> None:
        if getpid() != me:  # a fork of ours that returned into the harness says nothing
            exit_(0)
        data = ("{" + ",".join([esc(k) + ":" + value(v) for k, v in record.items()]) + tail).encode()
        view = memoryview(data)
        while view:
            view = view[write(3, view) :]

    return emit


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = _text(exc)
    return (f"{name}: {text}" if text else name)[:1000]


def _text(exc: BaseException) -> str:
    """``str(exc)`` as a plain str, or a placeholder when the program's ``__str__`` misbehaves."""
    try:
        return str.__str__(str(exc))[:1000]
    except BaseException:
        return "<the exception's __str__ failed>"


def _restore(watched: list) -> list[str]:
    """Put back the standard library's callables (and modules) in ``watched`` that the program
    replaced or removed; return their names. By identity only: ``snapshot.items() <= space.items()``
    would ask a replacement's own ``__eq__`` whether it is the original."""
    missing, changed = object(), []
    for space, snapshot, prefix in watched:
        for key, old in snapshot.items():
            if space.get(key, missing) is not old:
                changed.append(f"{prefix}{key}")
                space[key] = old
    return changed


def _watch() -> dict[str, list]:
    """What ``_restore`` compares against, by top-level module name: each module's entries in
    ``sys.modules`` and the callables of each module but ``builtins`` (the tests get a snapshot
    of those, the harness its own copy), as they are before any program runs. A run watches the
    modules its tests name: checking all of them after every test dirtied enough copy-on-write
    pages to cost a third of the pool's throughput."""
    watched: dict[str, list] = {}
    for name, mod in list(sys.modules.items()):
        top = name.partition(".")[0]
        entries = watched.setdefault(top, [(sys.modules, {}, "sys.modules:")])
        entries[0][1][name] = mod
        space = getattr(mod, "__dict__", None)
        if type(space) is not dict or name == "builtins":
            continue
        snapshot = {k: v for k, v in space.items() if callable(v) and (name, k) not in _UNWATCHED}
        entries.append((space, snapshot, f"{name}."))
    return watched


def _harness_asserts(program: bytes, units: list[dict], nonce: str, pinned: list[str],
                     modules: list[str], bound: list[str]) -> None:
    import builtins
    import types

    emit = _reporter(nonce)
    exit_, perf, flush, restore, code_type = os._exit, time.perf_counter, _flush_stdio, _restore, types.CodeType
    watched = [entry for name in modules for entry in _WATCHED.get(name, ())]
    run_exit_funcs = __import__("atexit")._run_exitfuncs
    n_units = len(units)
    pristine = dict(builtins.__dict__)  # the tests see these, whatever the program patches
    pristine["_cs_cmp"] = comparator = _make_comparator()
    explain = comparator.explain
    codes: list = []  # compiled now: the program cannot reach compile() between the tests
    for i, unit in enumerate(units):
        try:
            codes.append(compile(unit["code"], f"<test {i}>", "exec"))
        except BaseException as exc:
            codes.append(exc)
    module = types.ModuleType("solution")
    module.__file__ = os.path.join(os.getcwd(), "solution.py")  # the work folder
    sys.modules["solution"] = module
    t = perf()
    try:
        exec(compile(program, "solution.py", "exec"), module.__dict__)
        emit({"kind": "load", "ok": True, "duration_s": perf() - t})
    except BaseException as exc:
        emit({"kind": "load", "ok": False, "message": _describe(exc), "exc": type(exc).__name__})
        codes = []  # nothing to test: every test is reported as not run
    # The tests meet the standard library as it was: what the program rebound while loading is
    # put back (its own functions see the originals too), and a test during which the program
    # rebinds any of it is an error, whatever the test said.
    restore(watched)
    # Exact str keys only: a program's str subclass with its own __eq__ as a key could answer
    # for a name the tests look up, past the pins below.
    namespace = {k: v for k, v in module.__dict__.items() if type(k) is str}
    # The tests' names for the harness and for the builtins they use are the harness's: a
    # program's `_cs_cmp = ...` or `len = ...` must not answer for them (the entry point, even
    # one named like a builtin, is the host's to leave out of `pinned`).
    for name in pinned:
        namespace.pop(name, None)
    namespace["__builtins__"] = pristine
    namespace["_cs_cmp"] = comparator
    # The code under test stays the code under test: its functions and classes that the tests name
    # are bound again before every unit, so a test's own `def f` (or `f = ...`) replaces nothing.
    keep = {name: namespace[name] for name in bound if name in namespace}
    update = namespace.update
    for i, code in enumerate(codes):
        t = perf()
        explain()
        update(keep)
        try:
            if type(code) is not code_type:
                raise code
            exec(code, namespace)
            outcome, message, exc_name = "passed", "", ""
        except AssertionError as exc:
            outcome, message, exc_name = "failed", _text(exc) or explain(), "AssertionError"
        except BaseException as exc:
            outcome, message, exc_name = "error", _describe(exc), type(exc).__name__
        changed = restore(watched)
        if changed:
            outcome, exc_name = "error", "Rebound"
            message = (f"the program rebinds {', '.join(changed[:3])} of the standard library while "
                       "the test runs: the test's verdict cannot be trusted")[:1000]
        emit({"kind": "test", "i": i, "outcome": outcome, "message": message, "exc": exc_name,
              "duration_s": perf() - t})
    emit({"kind": "done", "n": n_units})
    flush()
    try:
        run_exit_funcs()  # e.g. multiprocessing's pool clean-up
    finally:
        flush()
        exit_(0)


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 -- not contextlib.suppress: the program can rebind module attributes
            stream.flush()
        except BaseException:
            pass


def _make_comparator() -> Any:  # the comparison function, with .explain
    """``_cs_cmp(ops, *operands)``: the tests' comparisons, which a program cannot rig.

    Comparing plain data (built-in types, recursively) with a value whose comparison methods
    come from the program under test fails the test instead of asking the program's method:
    an object whose ``__eq__`` always says True proves nothing. A class is judged by what the
    interpreter will call, read through ``type``'s own descriptors (a metaclass can fake
    ``__mro__``, ``__dict__`` and ``==`` between classes, not those): static C types and the
    standard library's classes as they were before the program ran are trusted; any other
    class that defines a comparison method, other than a C slot it inherits its data from, is not.
    """
    import operator

    plain = (int, float, complex, str, bytes, bytearray, bool, type(None), list, tuple, dict,
             set, frozenset, range, type(...))
    plain_ids = {id(t) for t in plain}  # by identity: a metaclass's __eq__ could make any class "equal"
    containers = (list, tuple, set, frozenset)
    ops = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge, "in": lambda a, b: a in b,
           "not in": lambda a, b: a not in b}
    trusted, dunders = _TRUSTED, _DUNDERS
    mro_of, dict_of = type.__dict__["__mro__"].__get__, type.__dict__["__dict__"].__get__
    name_of, flags_of = type.__dict__["__qualname__"].__get__, type.__dict__["__flags__"].__get__
    get_type, is_sub, dict_keys, dict_values = type, issubclass, dict.keys, dict.values
    missing = object()
    last_false = [""]

    def class_verdict(cls: type) -> tuple[str, bool] | None:
        """The first comparison method of ``cls`` that cannot vouch for it, as (name, replaced):
        replaced is True for a standard-library class's method that the program swapped (never
        trustworthy), False for the program's own (not trusted against plain data)."""
        mro = mro_of(cls)
        static = [dict_of(k) for k in mro if not flags_of(k) & _HEAPTYPE]
        for klass in mro:
            if not flags_of(klass) & _HEAPTYPE:
                continue  # a static C type: C code, and a dictionary nobody can write to
            own, known = dict_of(klass), trusted.get(id(klass))
            for name in dunders:
                fn = own.get(name, missing)
                if known is not None:
                    if fn is not known[1].get(name, missing):
                        return f"{name_of(klass)}.{name}", True
                elif fn is not missing and not any(d.get(name, missing) is fn for d in static):
                    # anything but a C base's own method under its own name (`__eq__ = int.__ne__`
                    # in a subclass of int would say 5 == 1)
                    return f"{name_of(klass)}.{name}", False
        return None

    def scan(value: object) -> tuple[bool, str | None, str | None]:
        """(plain data?, a program's comparison method inside, a replaced standard-library one inside)."""
        stack: list[Any]
        stack, seen, own, verdicts = [value], 0, None, {}
        while stack and seen < 1_000_000:
            v = stack.pop()
            seen += 1
            cls = get_type(v)
            if id(cls) not in plain_ids:
                if id(cls) not in verdicts:
                    verdicts[id(cls)] = class_verdict(cls)
                found = verdicts[id(cls)]
                if found is not None:
                    if found[1]:
                        return False, own, found[0]
                    own = own or found[0]
            if is_sub(cls, containers):
                stack.extend(v)
            elif is_sub(cls, dict):  # dict's own methods: a subclass's keys() could hide values
                stack.extend(dict_keys(v))
                stack.extend(dict_values(v))
        return id(get_type(value)) in plain_ids and own is None, own, None

    def compare(operators: tuple[str, ...], *operands: object) -> bool:
        scans = [scan(x) for x in operands]
        for i, op in enumerate(operators):
            a, b = operands[i], operands[i + 1]
            for mine, other in ((scans[i], scans[i + 1]), (scans[i + 1], scans[i])):
                if mine[2]:
                    raise AssertionError(f"untrusted comparison: {mine[2]} of the standard library was "
                                         "replaced by the program under test")
                if other[0] and mine[1]:
                    raise AssertionError(
                        f"untrusted comparison: {mine[1]} is defined by the program under test "
                        "and is not used to compare with plain data"
                    )
            if not ops[op](a, b):
                last_false[0] = f"{_short(a)} {op} {_short(b)} is False"
                return False
        return True

    def explain() -> str:
        """The last comparison that came out False, to explain a bare ``assert``."""
        text, last_false[0] = last_false[0], ""
        return text

    compare.explain = explain  # pyright: ignore[reportFunctionMemberAccess]  # the comparator carries its explainer
    return compare


def _trusted_classes() -> dict[int, tuple[type, dict]]:
    """The standard library's heap classes (and their bases) before any program runs, with their
    comparison methods: ``id(class) -> (class, {name: method})``, kept alive so ids stay theirs."""
    dict_of, mro_of = type.__dict__["__dict__"].__get__, type.__dict__["__mro__"].__get__
    found: dict[int, tuple[type, dict]] = {}
    for mod in list(sys.modules.values()):
        for value in list(getattr(mod, "__dict__", {}).values()):
            if not isinstance(value, type):
                continue
            for klass in mro_of(value):
                if id(klass) not in found:
                    own = dict_of(klass)
                    found[id(klass)] = (klass, {n: own[n] for n in _DUNDERS if n in own})
    return found


def _short(value: object) -> str:
    try:
        text = repr(value)
    except BaseException:  # a program's __repr__ may raise
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:200] + "..."


def _harness_io(program: bytes, cases: list[dict], nonce: str) -> None:
    """stdin/stdout cases: each case runs the program afresh as __main__ in a grandchild."""
    emit = _reporter(nonce)
    try:
        code = compile(program, "solution.py", "exec")
    except BaseException as exc:
        emit({"kind": "load", "ok": False, "message": _describe(exc), "exc": type(exc).__name__})
        code = None
    else:
        emit({"kind": "load", "ok": True, "duration_s": 0.0})
    for i, case in enumerate(cases):
        t = time.perf_counter()
        if code is None:
            result = ("error", "the program does not compile", "SyntaxError")
        else:
            result = _run_io_case(code, case)
        emit({"kind": "test", "i": i, "outcome": result[0], "message": result[1],
              "exc": result[2], "duration_s": time.perf_counter() - t})
    emit({"kind": "done", "n": len(cases)})
    os._exit(0)


def _run_io_case(code, case: dict) -> tuple[str, str, str]:
    in_path = os.path.join(os.getcwd(), ".stdin")  # the work folder
    with open(in_path, "w", encoding="utf-8") as f:
        f.write(case["input"])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            fd = os.open(in_path, os.O_RDONLY)
            for source, target in ((fd, 0), (out_w, 1), (err_w, 2)):
                os.dup2(source, target)
            os.close(3)
            os.closerange(4, 1 << 16)
            _reopen_stdio()
            import types

            main = types.ModuleType("__main__")
            main.__file__ = os.path.join(os.getcwd(), "solution.py")
            sys.modules["__main__"] = main
            status = 0
            try:
                exec(code, main.__dict__)
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                import traceback

                traceback.print_exc()
                status = 1
            _flush_stdio()
        finally:
            os._exit(status)
    os.close(out_w)
    os.close(err_w)
    out, err = _Capture(1 << 20), _Capture(1 << 14)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    open_fds = {out_r: out, err_r: err}
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            if _drain(fd, open_fds[fd], 1 << 20) is None:
                del open_fds[fd]
        if out.total > (64 << 20):
            os.kill(pid, signal.SIGKILL)
            break
    os.close(out_r)
    os.close(err_r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return "error", "time limit exceeded (CPU)", "Timeout"
        return "error", f"killed by signal {signal.Signals(sig).name}", "Signal"
    if os.waitstatus_to_exitcode(status) != 0:
        return "error", err.text()[-1000:] or "non-zero exit status", "RuntimeError"

    def norm(text: str) -> list[str]:
        lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    if norm(out.text()) == norm(case["output"]):
        return "passed", "", ""
    return "failed", f"expected {case['output'][:200]!r}, got {out.text()[:200]!r}", "WrongAnswer"


# --------------------------------------------------------------------------- main


def _seal() -> bool:
    """Make this process non-dumpable, and say whether it now is.

    The kernel then owns ``/proc/1/*`` as root and refuses ``/proc/1/fd/*``, ``pidfd_getfd``
    and ptrace to every process without CAP_SYS_PTRACE: the program (same uid, no
    capabilities) cannot reach the runner's channel, however it names it. Forked children
    inherit the flag, so the harness's report pipe is out of reach of the program's own
    subprocesses too; a program that execs gets a dumpable process of its own, as usual.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_get_dumpable, pr_set_dumpable = 3, 4
    libc.prctl(pr_set_dumpable, 0, 0, 0, 0)
    return libc.prctl(pr_get_dumpable, 0, 0, 0, 0) == 0


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # init ignores what it does not handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    global _TRUSTED, _WATCHED
    import gc

    os.makedirs("/tmp/work", exist_ok=True)
    _rmtree_contents("/tmp")
    sealed = _seal()
    _WATCHED = _watch()
    _TRUSTED = _trusted_classes()
    gc.freeze()  # keep the preloaded heap out of the children's collections: fewer copied pages
    _write_all(1, encode_frame({"op": "ready", "pid": os.getpid(), "python": sys.version.split()[0],
                                "rss_kb": _rss_kb(), "sealed": sealed}))
    while True:
        req = _read_frame(0)
        if req is None or req.get("op") == "exit":
            return  # input closed (the client is gone): PID 1 exits and the container with it
        reply: dict
        if req.get("op") == "run":
            reply = _execute(req)
        elif req.get("op") == "health":
            reply = _health()
        else:
            reply = {"op": "error", "message": f"unknown op {req.get('op')!r}"}
        reply["id"] = req.get("id")
        _write_all(1, encode_frame(reply))


if __name__ == "_cs_runner":
    main()
