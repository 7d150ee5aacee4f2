"""The child process of ``_strong``: runs a reference solution on the tester's variant inputs.

Run as ``python -s -P _probe.py`` with a clean environment; reads one JSON request from stdin::

    {"program": <reference source>, "setup": [<import statements>], "exprs": [<expressions>],
     "call_cpu_s": 0.25, "batch_cpu_s": 2.0, "max_repr": 2000}

and writes one JSON line per expression it got to, in order, flushed as it goes::

    {"i": 0, "ok": true, "repr": "[1, 2]", "truth": true, "float": "top" | "nested" | null}
    {"i": 1, "ok": false, "error": "ZeroDivisionError"}

``ok`` means the value is plain data (built-in literals all the way down) whose ``repr`` reads back
(``ast.literal_eval``) as an equal value. Each expression gets ``call_cpu_s`` of CPU time (a profiling
timer, so a loaded machine does not change which ones finish), the batch ``batch_cpu_s``; what the
reference prints goes to /dev/null. Nothing from codestill is imported: this file runs alone.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import signal
import sys
import time

_PLAIN = (int, float, str, bytes, bool, type(None), list, tuple, dict, set, frozenset)


class _OutOfTime(BaseException):
    pass


_armed = [False]


def _on_prof(signum, frame):
    if _armed[0]:
        _armed[0] = False
        raise _OutOfTime


def _plain(value, depth=0):
    if depth > 50 or type(value) not in _PLAIN:
        return False
    if type(value) in (list, tuple, set, frozenset):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return True


def _floats(value):
    """"top" for a float result, "nested" for floats inside a container, else None."""
    if type(value) is float:
        return "top"
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is float:
            return "nested"
        if type(v) in (list, tuple, set, frozenset):
            stack.extend(v)
        elif type(v) is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
    return None


def _normal(value, depth=0):
    """Counter, defaultdict, OrderedDict as the plain dict they equal (their repr is no literal)."""
    if depth > 50:
        return value
    if isinstance(value, dict) and type(value) is not dict and type(value).__module__ == "collections":
        value = dict(value)
    if type(value) is dict:
        return {k: _normal(v, depth + 1) for k, v in value.items()}
    if type(value) is list:
        return [_normal(v, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(_normal(v, depth + 1) for v in value)
    return value


def _record(i, value, max_repr):
    value = _normal(value)
    text = repr(value)
    if len(text) > max_repr or not _plain(value):
        return {"i": i, "ok": False, "error": "not plain data", "truth": bool(value)}
    back = ast.literal_eval(text)
    if type(back) is not type(value) or back != value:
        return {"i": i, "ok": False, "error": "repr does not read back", "truth": bool(value)}
    return {"i": i, "ok": True, "repr": text, "truth": bool(value), "float": _floats(value)}


def main() -> None:
    req = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    sys.setrecursionlimit(5000)
    cpu = int(req["batch_cpu_s"]) + 3
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    signal.signal(signal.SIGPROF, _on_prof)
    per, total, max_repr = float(req["call_cpu_s"]), float(req["batch_cpu_s"]), int(req["max_repr"])
    namespace = {"__name__": "solution"}
    _armed[0] = True
    signal.setitimer(signal.ITIMER_PROF, total)
    try:
        exec(compile(req["program"], "solution.py", "exec"), namespace)
        for stmt in req["setup"]:
            exec(compile(stmt, "<setup>", "exec"), namespace)
    except BaseException as e:  # the reference itself does not load: nothing to report
        out.write(json.dumps({"i": -1, "ok": False, "error": type(e).__name__}) + "\n")
        out.flush()
        return
    finally:
        _armed[0] = False
        signal.setitimer(signal.ITIMER_PROF, 0)
    start = time.process_time()
    for i, source in enumerate(req["exprs"]):
        if time.process_time() - start > total:
            break
        try:
            code = compile(source, f"<probe {i}>", "eval")
            _armed[0] = True
            signal.setitimer(signal.ITIMER_PROF, per)
            try:
                rec = _record(i, eval(code, dict(namespace)), max_repr)
            finally:
                _armed[0] = False
                signal.setitimer(signal.ITIMER_PROF, 0)
        except BaseException as e:
            rec = {"i": i, "ok": False, "error": type(e).__name__}
        out.write(json.dumps(rec) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
