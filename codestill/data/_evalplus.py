"""EvalPlus's HumanEval+ (v0.1.10) and MBPP+ (v0.2.0), read as EvalPlus reads them.

Each record has the benchmark's ``base_input`` (the original tests' inputs) and ``plus_input`` (the
extra inputs EvalPlus generated), as lists of argument lists. JSON cannot say "tuple", "set" or
"complex", so the MBPP+ file stores some arguments in a lossy form; EvalPlus turns them back per
task (``mbpp_deserialize_inputs`` in its ``evalplus/data/mbpp.py``) before calling the function, and
so do we (``_MBPP_ARGS`` below: the same task ids, the same conversions). Without it a correct
solution that indexes or hashes a tuple argument would be judged on the wrong input.

Nothing is read at import; ``load_evalplus`` reads and caches on first call.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

PlusName = Literal["humaneval+", "mbpp+"]
# name -> (file shipped in this folder, EvalPlus release version)
EVALPLUS_FILES: dict[str, tuple[str, str]] = {
    "humaneval+": ("HumanEvalPlus.jsonl.gz", "v0.1.10"),
    "mbpp+": ("MbppPlus.jsonl.gz", "v0.2.0"),
}


class EvalPlusProblem(BaseModel):
    """One EvalPlus task. ``id`` is codestill's form ("humaneval/0", "mbpp/2"); ``task_id`` upstream's."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    id: str
    task_id: str
    dataset: Literal["humaneval", "mbpp"]
    prompt: str
    entry_point: str
    canonical_solution: str
    base_input: list[Any]
    plus_input: list[Any]
    atol: float
    contract: str = ""
    test: str = ""  # HumanEval+: the original check(candidate) code
    assertion: str = ""  # MBPP+: the original asserts (as revised by EvalPlus)

    @property
    def reference(self) -> str:
        """The canonical solution as a whole program (HumanEval's is a body under the prompt)."""
        return self.prompt + self.canonical_solution if self.dataset == "humaneval" else self.canonical_solution


def _tuples(x: Any) -> Any:
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


def _each(f: Callable[[Any], Any]) -> Callable[[list], list]:
    return lambda inp: [f(a) for a in inp]


# MBPP+ task number -> how one input (its argument list) is turned back into Python values.
_MBPP_ARGS: dict[int, Callable[[list], Any]] = {}
for _n in (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
           740, 744, 809):
    _MBPP_ARGS[_n] = _each(tuple)  # every argument is a tuple
for _n in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
    _MBPP_ARGS[_n] = _each(lambda a: [tuple(x) for x in a])  # lists of tuples
for _n in (75, 413, 444, 753):
    _MBPP_ARGS[_n] = lambda inp: [[tuple(x) for x in inp[0]], inp[1]]
for _n in (106, 750):
    _MBPP_ARGS[_n] = lambda inp: [inp[0], tuple(inp[1])]
for _n in (250, 405, 446, 617, 720, 763, 808):
    _MBPP_ARGS[_n] = lambda inp: [tuple(inp[0]), inp[1]]
for _n in (259, 401, 445):
    _MBPP_ARGS[_n] = _each(lambda a: tuple(tuple(x) for x in a))  # tuples of tuples
for _n in (580, 615, 791):
    _MBPP_ARGS[_n] = _tuples  # every list, at every depth, is a tuple
# An empty list in task 115 stands for an empty dict (EvalPlus's own reading; the task checks emptiness).
_MBPP_ARGS[115] = lambda inp: [[set(x) if isinstance(x, list) and x else {} for x in inp[0]]]
_MBPP_ARGS[124] = lambda inp: [float(inp[0]), complex(inp[1])]
_MBPP_ARGS[252] = lambda inp: [complex(inp[0])]
_MBPP_ARGS[278] = lambda inp: [tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])]
_MBPP_ARGS[307] = lambda inp: [tuple(inp[0]), inp[1], inp[2]]
_MBPP_ARGS[722] = lambda inp: [{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]]
del _n


def mbpp_arguments(task_id: str, inputs: list) -> list:
    """MBPP+ inputs with the tuples, sets and complex numbers JSON could not store put back."""
    convert = _MBPP_ARGS.get(int(task_id.rsplit("/", 1)[-1]))
    return inputs if convert is None else [convert(inp) for inp in inputs]


def _raw(name: str) -> bytes:
    return resources.files("codestill.data").joinpath(EVALPLUS_FILES[name][0]).read_bytes()


def evalplus_digest(name: PlusName) -> str:
    """SHA-256 of the shipped file: the key of anything computed from it (reference outputs)."""
    return hashlib.sha256(_raw(name)).hexdigest()


@lru_cache(maxsize=2)
def load_evalplus(name: PlusName) -> tuple[EvalPlusProblem, ...]:
    """HumanEval+ or MBPP+, in task order, inputs ready to be passed as ``f(*args)``."""
    if name not in EVALPLUS_FILES:
        raise ValueError(f"unknown EvalPlus benchmark {name!r}; expected one of {', '.join(EVALPLUS_FILES)}")
    out = []
    for line in gzip.decompress(_raw(name)).decode("utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        dataset = "humaneval" if name == "humaneval+" else "mbpp"
        # Mbpp/793 stores its (empty) plus inputs as {}: no extra inputs.
        base, plus = list(rec["base_input"] or []), list(rec["plus_input"] or [])
        if dataset == "mbpp":
            base, plus = mbpp_arguments(rec["task_id"], base), mbpp_arguments(rec["task_id"], plus)
        out.append(EvalPlusProblem(
            id=rec["task_id"].lower(), task_id=rec["task_id"], dataset=dataset, prompt=rec["prompt"],
            entry_point=rec["entry_point"], canonical_solution=rec["canonical_solution"], base_input=base,
            plus_input=plus, atol=float(rec.get("atol") or 0), contract=rec.get("contract") or "",
            test=rec.get("test") or "", assertion=rec.get("assertion") or "",
        ))
    return tuple(out)
