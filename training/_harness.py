"""The EvalPlus side of a sandbox run: shipped as source, top of the test code, next to the sample.

Standard library only (the sandbox image has no numpy), every name prefixed ``_cs_`` so that it
cannot clash with a sample's own names. The host imports this module too, for the value codec.

Values cross the host/sandbox boundary as tagged JSON (``_cs_enc`` / ``_cs_dec``): plain JSON says
neither "tuple" nor "set", and ``(1, 2) == [1, 2]`` is False, so a lossy format would fail right
answers. Huge ints travel as hex (no int/str digit limit applies to hex).

Two jobs:

- ``_cs_truth(part, start, stop)``: run the *reference* on inputs, print each output with its CPU
  time on stdout (trusted code, so stdout is a fine channel).
- ``_cs_check(part)``: run the *sample* on every input of a part, each under its time limit, and
  judge each output as EvalPlus does (``_cs_judge``), stopping at the first failure (EvalPlus's fast
  check). One test unit per part, not per input: the host splits test code statement by statement at
  a cost that grows with the code's size, and the data (up to 1,000 inputs) travels packed in one
  statement (``_cs_pack``: zlib + base64).

Comparisons of a sample's output are written as ``assert`` statements on purpose: the sandbox
rewrites those to its hardened comparator, so an object whose ``__eq__`` always says True proves
nothing (see tools/sandbox/README.md, "How a pass is decided").
"""

import base64 as _cs_base64
import copy as _cs_copy
import json as _cs_json
import math as _cs_math
import os as _cs_os
import signal as _cs_signal
import sys as _cs_sys
import time as _cs_time
import zlib as _cs_zlib

_CS_MARK = "@@codestill-truth "
_CS_RTOL = 1e-07  # np.allclose's rtol, as EvalPlus sets it
_CS_FLOAT_ATOL = 1e-06  # EvalPlus's atol for float outputs when the dataset gives none
# EvalPlus's special oracles for MBPP+ (evalplus/eval/_special_oracle.py): entry points whose outputs
# are compared as sets, and those whose output (a re.Match) only has to be None or not.
_CS_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
              "intersection_array", "find_dissimilar", "Diff")
_CS_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
# Outputs whose encoding is longer than this are not shipped: the truth run says {"big": size} instead and
# the check recomputes them with the reference, in the sandbox (HumanEval/130 returns 1e6-element lists).
_CS_BIG = 1 << 16
_CS_RECOMPUTE = type("Recompute", (), {})()  # what {"big": size} decodes to
# The exception a per-input time-out raises. Named "Timeout": the sandbox reports such a test as a time-out.
_CsTimeout = type("Timeout", (BaseException,), {})

def _cs_enc(value):
    """A JSON-able, type-preserving form of ``value``; TypeError for what it cannot carry."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if value.bit_length() <= 62 else {"int": hex(value)}
    if kind is float:
        return value if _cs_math.isfinite(value) else {"float": repr(value)}
    if kind is list:
        return [_cs_enc(v) for v in value]
    if kind is tuple:
        return {"tuple": [_cs_enc(v) for v in value]}
    if kind is set or kind is frozenset:
        return {kind.__name__: [_cs_enc(v) for v in value]}
    if kind is complex:
        return {"complex": [_cs_enc(value.real), _cs_enc(value.imag)]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if isinstance(value, dict):  # Counter, OrderedDict, defaultdict compare equal to a plain dict
        return {"dict": [[_cs_enc(k), _cs_enc(v)] for k, v in value.items()]}
    if isinstance(value, int):  # an IntEnum, say: its int value is what == sees
        return _cs_enc(int(value))
    raise TypeError(f"cannot carry a value of type {kind.__name__}")


def _cs_dec(obj):
    if isinstance(obj, list):
        return [_cs_dec(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    (tag, body), = obj.items()
    if tag == "int":
        return int(body, 16)
    if tag == "float":
        return float(body)
    if tag == "tuple":
        return tuple(_cs_dec(v) for v in body)
    if tag == "set":
        return {_cs_dec(v) for v in body}
    if tag == "frozenset":
        return frozenset(_cs_dec(v) for v in body)
    if tag == "complex":
        return complex(_cs_dec(body[0]), _cs_dec(body[1]))
    if tag == "bytes":
        return bytes.fromhex(body)
    if tag == "dict":
        return {_cs_dec(k): _cs_dec(v) for k, v in body}
    if tag == "big":
        return _CS_RECOMPUTE
    raise ValueError(f"unknown tag {tag!r}")


def _cs_pack(data):
    """Host side: a dict of values as compact text (tagged JSON, zlib, base64)."""
    text = _cs_json.dumps({key: _cs_enc(value) for key, value in data.items()}, separators=(",", ":"))
    return _cs_base64.b64encode(_cs_zlib.compress(text.encode("utf-8"), 6)).decode("ascii")


def _cs_load(packed):
    """The run's data, in the sandbox (never called on the host: it changes interpreter state)."""
    if hasattr(_cs_sys, "set_int_max_str_digits"):
        _cs_sys.set_int_max_str_digits(50000)  # what EvalPlus sets, for samples too
    text = _cs_zlib.decompress(_cs_base64.b64decode(packed)).decode("utf-8")
    return {key: _cs_dec(value) for key, value in _cs_json.loads(text).items()}


def _cs_repr(value, limit=200):
    try:
        text = repr(value)
    except BaseException:  # a sample's __repr__ may raise
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _cs_eq(a, b):
    """a == b, judged by the sandbox's comparator (the assert below is rewritten to use it)."""
    try:
        assert a == b
    except AssertionError:
        return False
    return True


def _cs_is_floats(x):
    if type(x) is float:
        return True
    return type(x) in (list, tuple) and len(x) > 0 and all(type(i) is float for i in x)


def _cs_close(out, exp, atol):
    """np.allclose(out, exp, rtol=1e-07, atol=atol) for numbers and (nested) sequences of numbers."""
    if type(exp) in (list, tuple):
        if type(out) not in (list, tuple) or len(out) != len(exp):
            return False
        return all(_cs_close(o, e, atol) for o, e in zip(out, exp, strict=True))
    numbers = (bool, int, float, complex)
    if type(out) not in numbers or type(exp) not in numbers:
        return False
    if isinstance(out, complex) or isinstance(exp, complex):
        if not all(_cs_math.isfinite(v) for v in (out.real, out.imag, exp.real, exp.imag)):
            return out == exp
    elif not (_cs_math.isfinite(out) and _cs_math.isfinite(exp)):
        return out == exp  # inf only equals the same inf; nan equals nothing (equal_nan=False)
    return abs(out - exp) <= atol + _CS_RTOL * abs(exp)


def _cs_poly(xs, x):
    return sum(c * _cs_math.pow(x, i) for i, c in enumerate(xs))


def _cs_surface_area(base_edge, height):
    slant = _cs_math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _cs_digit_distance(a, b):
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width), strict=True))


def _cs_judge(out, exp, inp, atol, dataset, entry):
    """EvalPlus's verdict on one output; AssertionError (with what differed) when it is wrong."""
    if dataset == "humaneval" and entry == "find_zero":  # any root will do: |poly(xs, out)| <= atol
        assert type(out) in (int, float) and abs(_cs_poly(inp[0], out)) <= atol, (
            f"find_zero returned {_cs_repr(out)}, not a root within {atol:g}")
        return
    exact = _cs_eq(out, exp)
    if dataset == "mbpp":
        if entry == "are_equivalent":  # Mbpp/164: EvalPlus accepts any output (its oracle is broken)
            exact = True
        elif entry == "sum_div":  # Mbpp/295: 0 is also accepted
            exact = exact or _cs_eq(out, 0)
        elif entry == "surface_Area":  # Mbpp/581: either reading of "height"
            exact = exact or (type(out) in (int, float) and abs(out - _cs_surface_area(*inp)) <= atol)
        elif entry == "digit_distance_nums":  # Mbpp/558
            exact = exact or _cs_eq(out, _cs_digit_distance(*inp))
        elif entry in _CS_SET_EQ:
            try:
                exact = _cs_eq(set(out), set(exp))
            except TypeError:
                exact = False
        elif entry in _CS_NOT_NONE:  # the expected value is already "is not None"
            exact = _cs_eq(out, exp) if type(out) is bool else exp == (out is not None)
    if exact:
        return
    tolerance = _CS_FLOAT_ATOL if atol == 0 and _cs_is_floats(exp) else atol
    shown = f"expected {_cs_repr(exp)}, got {_cs_repr(out)}"
    assert tolerance != 0, shown
    assert type(out) is type(exp) and _cs_close(out, exp, tolerance), f"{shown} (tolerance {tolerance:g})"


def _cs_expected(state, part, i, inp):
    """The expected output: shipped, or for a big one the reference's, computed here and now."""
    exp = state[part + "_out"][i]
    if exp is not _CS_RECOMPUTE:
        return exp
    if "reference_fn" not in state:
        namespace = {"__name__": "reference"}
        exec(compile(state["reference"], "reference.py", "exec"), namespace)
        state["reference_fn"] = namespace[state["entry"]]
    out = state["reference_fn"](*_cs_copy.deepcopy(inp))
    return (out is not None) if state["not_none"] else out


def _cs_alarm(signum, frame):
    raise _CsTimeout("time limit exceeded")


def _cs_check(part):
    """Every input of ``part`` ("base" or "plus"), each under its CPU time limit (a wall-clock alarm
    at 2x + 1 s backs it up), stopping at the first that fails, as EvalPlus's fast check does."""
    state = globals()["_CS"]  # the data statement that follows this file in the test code sets it
    if state["failed"] is not None:
        raise AssertionError(f"not run: {state['failed']} failed first")
    fn = globals().get(state["entry"])
    if not callable(fn):
        state["failed"] = f"{part} input 0"
        raise NameError(f"the program defines no function {state['entry']}")
    for i, inp in enumerate(state[part]):
        label = state["failed"] = f"{part} input {i}"  # until it is shown to pass
        limit = state[part + "_limit"][i]
        expected = _cs_expected(state, part, i, inp)
        handlers = (_cs_signal.signal(_cs_signal.SIGPROF, _cs_alarm),
                    _cs_signal.signal(_cs_signal.SIGALRM, _cs_alarm))
        _cs_signal.setitimer(_cs_signal.ITIMER_PROF, limit)
        _cs_signal.setitimer(_cs_signal.ITIMER_REAL, 2 * limit + 1)
        try:
            out = fn(*inp)
        except _CsTimeout:
            raise _CsTimeout(f"{label}: time limit exceeded ({limit:g} s CPU); args {_cs_repr(inp)}") from None
        finally:
            _cs_signal.setitimer(_cs_signal.ITIMER_PROF, 0)
            _cs_signal.setitimer(_cs_signal.ITIMER_REAL, 0)
            _cs_signal.signal(_cs_signal.SIGPROF, handlers[0])
            _cs_signal.signal(_cs_signal.SIGALRM, handlers[1])
        try:
            _cs_judge(out, expected, inp, state["atol"], state["dataset"], state["entry"])
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}; args {_cs_repr(inp)}") from None
    state["failed"] = None


def _cs_write(text):
    data = text.encode("utf-8", "backslashreplace")
    while data:
        data = data[_cs_os.write(1, data):]


def _cs_fits(value, budget):
    """False when ``value``'s JSON is surely longer than ``budget`` characters, found without encoding it.

    Counts a lower bound (a character per scalar and per container item, a string's length) and stops
    as soon as it passes the budget, so the cost is O(budget) however large the value: Mbpp/255's
    reference returns 1.7 million 77-tuples, whose tagged encoding alone would need several GB.
    """
    stack, left = [value], budget
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes:
            left -= len(item)
        elif kind in (list, tuple, set, frozenset):
            left -= len(item)
            if left >= 0:
                stack.extend(item)
        elif isinstance(item, dict):
            left -= 2 * len(item)
            if left >= 0:
                stack.extend(item.keys())
                stack.extend(item.values())
        left -= 1
        if left < 0:
            return False
    return True


def _cs_truth(part, start, stop):
    """The reference's output and CPU time for inputs [start, stop) of ``part``, one line each."""
    state = globals()["_CS"]  # the data statement that follows this file in the test code sets it
    fn = globals()[state["entry"]]
    for i in range(start, stop):
        args = _cs_copy.deepcopy(state[part][i])  # the reference may mutate its arguments
        error, out = None, None
        t0 = _cs_time.process_time()
        try:
            out = fn(*args)
        except Exception as e:
            error = f"{type(e).__name__}: {e}"[:500]
        seconds = _cs_time.process_time() - t0
        if state["not_none"] and error is None:
            out = out is not None
        if error is None and not _cs_fits(out, _CS_BIG):
            value = {"big": -1}  # surely too big to ship: not even encoded (that alone can take GBs)
        else:
            try:
                value = _cs_enc(out)
            except TypeError as e:
                error, value = error or str(e), None
            size = len(_cs_json.dumps(value))
            if size > _CS_BIG:
                value = {"big": size}
        out = None  # let a huge output go before the next input runs
        _cs_write("\n" + _CS_MARK + _cs_json.dumps([part, i, value, seconds, error]) + "\n")
