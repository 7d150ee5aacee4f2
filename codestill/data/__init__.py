"""The reference problems that ship with codestill: sanitized MBPP (427) and HumanEval (164), and
EvalPlus's HumanEval+ (v0.1.10) and MBPP+ (v0.2.0) with their extra test inputs.

The files in this folder are byte-identical copies of the upstream releases; ``NOTICE.md`` names
their sources, authors and licences. ``load_bank()`` turns them into ``BankProblem`` records, which
the simulated teacher (``codestill.sim``) answers from and the evaluation reads.

    MBPP       id "mbpp/<task_id>"       instruction = the prompt sentence; tests = test_imports + asserts
    HumanEval  id "humaneval/<n>"        instruction = the whole prompt (signature + docstring);
                                         tests = its ``check(candidate)`` code with ``entry_point``

``load_evalplus("humaneval+" | "mbpp+")`` gives ``EvalPlusProblem`` records (base and plus inputs,
canonical solution, tolerance), which ``codestill eval`` scores against (see ``_evalplus``).
"""

from __future__ import annotations

import ast
import gzip
import json
import warnings
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from codestill.data._evalplus import (
    EVALPLUS_FILES,
    EvalPlusProblem,
    evalplus_digest,
    load_evalplus,
    mbpp_arguments,
)
from codestill.schemas import Task, TestSuite

MBPP_FILE = "sanitized-mbpp.json"
HUMANEVAL_FILE = "HumanEval.jsonl.gz"


class BankProblem(BaseModel):
    """One reference problem: an instruction, a reference solution that passes, and its tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    source: Literal["mbpp", "humaneval", "seed"]
    instruction: str
    entry_point: str
    signature: str
    reference: str
    tests: TestSuite

    def to_task(self) -> Task:
        return Task(id=self.id, instruction=self.instruction, entry_point=self.entry_point,
                    signature=self.signature, tests=self.tests, source=self.source)


def def_line(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The def line without its colon, on one line, e.g. ``def f(xs: list[int]) -> int``.

    Built from the AST rather than cut from the source so multi-line headers and comments come
    out in one canonical form (the simulator's decomposer writes signatures the same way).
    """
    header = ast.FunctionDef(name=fn.name, args=fn.args, body=[ast.Pass()], decorator_list=[],
                             returns=fn.returns, type_comment=None, type_params=[])
    text = ast.unparse(ast.fix_missing_locations(header)).splitlines()[0].rstrip(":")
    return f"async {text}" if isinstance(fn, ast.AsyncFunctionDef) else text


def parse_quietly(code: str) -> ast.Module:
    """``ast.parse`` without the DeprecationWarnings some upstream solutions raise ("invalid escape
    sequence '\\w'" in non-raw regex strings): they are the dataset's, and nothing we can fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(code)


def parses(code: str) -> bool:
    """Whether ``code`` is Python that parses (``parse_quietly``)."""
    try:
        parse_quietly(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _functions(code: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in parse_quietly(code).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _called_names(code: str) -> list[str]:
    return [n.func.id for n in ast.walk(parse_quietly(code))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]


def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath(name).read_bytes()


@lru_cache(maxsize=1)
def load_mbpp() -> tuple[BankProblem, ...]:
    out = []
    for rec in json.loads(_read(MBPP_FILE)):
        functions = _functions(rec["code"])
        tests = "\n".join([*rec["test_imports"], *rec["test_list"]]) + "\n"
        # The entry point is the reference's function that the asserts call (one per problem).
        entry = next((n for n in _called_names(tests) if n in functions), next(reversed(functions)))
        out.append(BankProblem(
            id=f"mbpp/{rec['task_id']}", source="mbpp", instruction=rec["prompt"].strip(), entry_point=entry,
            signature=def_line(functions[entry]), reference=rec["code"], tests=TestSuite(code=tests),
        ))
    return tuple(out)


@lru_cache(maxsize=1)
def load_humaneval() -> tuple[BankProblem, ...]:
    out = []
    for line in gzip.decompress(_read(HUMANEVAL_FILE)).decode("utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        reference = rec["prompt"] + rec["canonical_solution"]
        entry = rec["entry_point"]
        out.append(BankProblem(
            id=rec["task_id"].replace("HumanEval/", "humaneval/"), source="humaneval",
            instruction=rec["prompt"].strip("\n"), entry_point=entry,
            signature=def_line(_functions(reference)[entry]), reference=reference,
            tests=TestSuite(code=rec["test"], entry_point=entry),
        ))
    return tuple(out)


def load_bank() -> tuple[BankProblem, ...]:
    """All reference problems, MBPP first (by task id), then HumanEval (by number)."""
    return load_mbpp() + load_humaneval()


__all__ = [
    "EVALPLUS_FILES",
    "BankProblem",
    "EvalPlusProblem",
    "def_line",
    "evalplus_digest",
    "load_bank",
    "load_evalplus",
    "load_humaneval",
    "load_mbpp",
    "mbpp_arguments",
    "parse_quietly",
]
