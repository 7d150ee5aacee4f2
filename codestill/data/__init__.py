"""The reference problems that ship with codestill: sanitized MBPP (427), full MBPP (974), HumanEval
(164), and EvalPlus's HumanEval+ (v0.1.10) and MBPP+ (v0.2.0) with their extra test inputs.

The files in this folder are byte-identical copies of the upstream releases; ``NOTICE.md`` names
their sources, authors and licences. ``load_bank()`` turns them into ``BankProblem`` records, which
the simulated teacher (``codestill.sim``) answers from and the evaluation reads.

    MBPP       id "mbpp/<task_id>"       instruction = the prompt sentence; tests = test_imports + asserts
    HumanEval  id "humaneval/<n>"        instruction = the whole prompt (signature + docstring);
                                         tests = its ``check(candidate)`` code with ``entry_point``

MBPP's splits are by task id (upstream README): 1-10 few-shot prompts, 11-510 test, 511-600
validation, 601-974 train. ``mbpp_split(id)`` names a problem's split. Evaluation scores the test
split; ``load_mbpp_split("train", "validation")`` gives the problems codestill may teach on (the
sanitized wording where sanitized MBPP has the task, full MBPP's otherwise: 464 problems). The
decontamination (``tools.decontam``) guards the test and prompt splits and HumanEval.

``load_evalplus("humaneval+" | "mbpp+")`` gives ``EvalPlusProblem`` records (base and plus inputs,
canonical solution, tolerance), which ``codestill eval`` scores against (see ``_evalplus``).
"""

from __future__ import annotations

import ast
import gzip
import json
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
from codestill.pysrc import def_line, parse_quietly
from codestill.schemas import Task, TestSuite

MBPP_FILE = "sanitized-mbpp.json"
MBPP_FULL_FILE = "mbpp.jsonl"
HUMANEVAL_FILE = "HumanEval.jsonl.gz"

Split = Literal["prompt", "test", "validation", "train"]
SPLITS: tuple[Split, ...] = ("prompt", "test", "validation", "train")
# The last task id of each split, in order (MBPP's README).
_SPLIT_ENDS: tuple[tuple[int, Split], ...] = ((10, "prompt"), (510, "test"), (600, "validation"), (974, "train"))


def mbpp_split(problem_id: str | int) -> Split | None:
    """The MBPP split of a problem ("mbpp/17", "Mbpp/17" or 17); None for an id that is not MBPP's."""
    text = str(problem_id)
    prefix, _, number = text.rpartition("/")
    if (prefix and prefix.lower() != "mbpp") or not number.isdigit():
        return None
    task = int(number)
    return next((split for end, split in _SPLIT_ENDS if 1 <= task <= end), None)


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


def _functions(code: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in parse_quietly(code).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _called_names(code: str) -> list[str]:
    return [n.func.id for n in ast.walk(parse_quietly(code))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]


def _read(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def _mbpp_problem(task_id: int, instruction: str, code: str, tests: str) -> BankProblem:
    functions = _functions(code)
    # The entry point is the reference's function that the asserts call (one per problem).
    entry = next((n for n in _called_names(tests) if n in functions), next(reversed(functions)))
    return BankProblem(id=f"mbpp/{task_id}", source="mbpp", instruction=instruction.strip(), entry_point=entry,
                       signature=def_line(functions[entry]), reference=code, tests=TestSuite(code=tests))


@lru_cache(maxsize=1)
def load_mbpp() -> tuple[BankProblem, ...]:
    """Sanitized MBPP (427 problems, every split), by task id."""
    return tuple(_mbpp_problem(rec["task_id"], rec["prompt"], rec["code"],
                               "\n".join([*rec["test_imports"], *rec["test_list"]]) + "\n")
                 for rec in json.loads(_read(MBPP_FILE)))


@lru_cache(maxsize=1)
def load_mbpp_full() -> tuple[BankProblem, ...]:
    """Full MBPP (974 problems) in its original wording; ``test_setup_code`` goes before the asserts.
    Its files use Windows line ends; they are made plain so code and tests read as ordinary Python."""
    out = []
    for line in _read(MBPP_FULL_FILE).decode("utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        setup = rec["test_setup_code"].replace("\r\n", "\n").strip()
        tests = "\n".join([*([setup] if setup else []), *rec["test_list"]]) + "\n"
        out.append(_mbpp_problem(rec["task_id"], rec["text"], rec["code"].replace("\r\n", "\n"), tests))
    return tuple(out)


def load_mbpp_split(*splits: Split) -> tuple[BankProblem, ...]:
    """MBPP's problems of ``splits``, one per task id in id order: sanitized MBPP's where it has the task
    (hand-checked wording and tests), full MBPP's otherwise. ``("train", "validation")``: 464 problems."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown MBPP split {unknown[0]!r}; use one of: {', '.join(SPLITS)}")
    sanitized = {p.id: p for p in load_mbpp()}
    chosen = [sanitized.get(p.id, p) for p in load_mbpp_full() if mbpp_split(p.id) in splits]
    return tuple(chosen)


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
    """All reference problems the simulated teacher knows: sanitized MBPP (by task id), full MBPP's
    train, validation and prompt problems that sanitized MBPP lacks (so it can teach on every problem
    of those splits), then HumanEval (by number). Full MBPP's test split stays out: nothing teaches on it."""
    sanitized = load_mbpp()
    have = {p.id for p in sanitized}
    extra = tuple(p for p in load_mbpp_full() if p.id not in have and mbpp_split(p.id) != "test")
    return sanitized + extra + load_humaneval()


__all__ = [
    "EVALPLUS_FILES",
    "SPLITS",
    "BankProblem",
    "EvalPlusProblem",
    "Split",
    "evalplus_digest",
    "load_bank",
    "load_evalplus",
    "load_humaneval",
    "load_mbpp",
    "load_mbpp_full",
    "load_mbpp_split",
    "mbpp_arguments",
    "mbpp_split",
]
