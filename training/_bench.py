"""The four benchmarks as one kind of ``Problem``: prompt, entry point, tests, inputs.

    humaneval   164  tests: the problem's check(candidate)          prompt: the function stub
    mbpp        427  tests: test_imports + the asserts (sanitized)  prompt: EvalPlus's MBPP form (below)
    humaneval+  164  base + plus inputs of HumanEval+ v0.1.10, judged against the reference's outputs
    mbpp+       378  base + plus inputs of MBPP+ v0.2.0, likewise

Splits: MBPP's are by task id (``codestill.data.mbpp_split``): 1-10 prompt, 11-510 test, 511-600
validation, 601-974 train. Each benchmark has the split its published protocol scores on (``DEFAULT_SPLIT``):
sanitized MBPP its test split (257 problems), MBPP+ all of its 378 (EvalPlus reports it so), HumanEval
and HumanEval+ all (they have no splits).

MBPP's prompt is EvalPlus's: the instruction and the first assert (which shows the function's name
and signature) inside a docstring. ``public`` is the first test only: what plan sampling may select
candidates by (the prompt already shows it for MBPP; for HumanEval it is the first assert of check()).
Ids are codestill's ("humaneval/0", "mbpp/2") for every benchmark.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from codestill.data import EVALPLUS_FILES, load_evalplus, load_humaneval, load_mbpp, mbpp_split
from codestill.errors import ConfigError
from codestill.pysrc import parse_quietly
from codestill.schemas import TestSuite

Bench = Literal["humaneval", "humaneval+", "mbpp", "mbpp+"]
BENCHES: tuple[Bench, ...] = ("humaneval", "humaneval+", "mbpp", "mbpp+")
EvalSplit = Literal["test", "validation", "train", "prompt", "all"]
SPLIT_CHOICES: tuple[EvalSplit, ...] = ("test", "validation", "train", "prompt", "all")
DEFAULT_SPLIT: dict[str, EvalSplit] = {"mbpp": "test", "mbpp+": "all", "humaneval": "all", "humaneval+": "all"}
SPLIT_IDS = {"prompt": "1-10", "test": "11-510", "validation": "511-600", "train": "601-974"}


def resolve_split(bench: str, split: str | None) -> EvalSplit:
    """The split to score: the benchmark's default when None. HumanEval has no splits, so anything but
    "all" for it is a ValueError (the caller turns it into its own one-line error)."""
    if split is None:
        return DEFAULT_SPLIT[bench]
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; use one of: {', '.join(SPLIT_CHOICES)}")
    if bench.startswith("humaneval") and split != "all":
        raise ValueError(f"{bench} has no {split} split (HumanEval is scored whole); drop --split or use --split all")
    return split  # type: ignore[return-value]


@dataclass(frozen=True)
class Problem:
    id: str
    bench: Bench
    dataset: Literal["humaneval", "mbpp"]
    prompt: str
    entry_point: str
    reference: str
    public: TestSuite
    tests: TestSuite | None = None  # plain benchmarks: the benchmark's own tests
    base_inputs: tuple[Any, ...] = ()  # plus benchmarks: argument lists
    plus_inputs: tuple[Any, ...] = ()
    atol: float = 0.0

    @property
    def plus(self) -> bool:
        return self.bench.endswith("+")


def mbpp_prompt(instruction: str, first_assert: str) -> str:
    return f'"""\n{instruction}\n{first_assert}\n"""\n'


def _first_test(code: str, entry_point: str | None) -> TestSuite:
    """The test code cut after its first assert: module setup kept; for HumanEval, check()'s body
    up to and including its first top-level assert."""
    tree = parse_quietly(code)
    body: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "check":
            cut = next((i for i, s in enumerate(stmt.body) if isinstance(s, ast.Assert)), len(stmt.body) - 1)
            stmt.body = stmt.body[: cut + 1]
            body.append(stmt)
        elif isinstance(stmt, ast.Assert):
            body.append(stmt)
            break
        else:
            body.append(stmt)
    return TestSuite(code=ast.unparse(ast.Module(body=body, type_ignores=[])) + "\n", entry_point=entry_point)


def _first_assert(code: str) -> str:
    tree = parse_quietly(code)
    found = next(s for s in tree.body if isinstance(s, ast.Assert))
    return ast.get_source_segment(code, found) or ast.unparse(found)


def _plain(bench: Bench) -> list[Problem]:
    out = []
    if bench == "humaneval":
        for p in load_humaneval():
            out.append(Problem(id=p.id, bench=bench, dataset="humaneval", prompt=p.instruction + "\n",
                               entry_point=p.entry_point, reference=p.reference, tests=p.tests,
                               public=_first_test(p.tests.code, p.entry_point)))
    else:
        for p in load_mbpp():
            out.append(Problem(id=p.id, bench=bench, dataset="mbpp",
                               prompt=mbpp_prompt(p.instruction, _first_assert(p.tests.code)),
                               entry_point=p.entry_point, reference=p.reference, tests=p.tests,
                               public=_first_test(p.tests.code, None)))
    return out


def _prompt_assert(prompt: str) -> str:
    """The assert an MBPP-style prompt shows: its docstring from the first ``assert`` line on."""
    lines = prompt.strip().strip('"').strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("assert")), len(lines))
    return "\n".join(lines[start:]) + "\n"


def _imports(code: str) -> str:
    tree = parse_quietly(code)
    return "".join(ast.unparse(s) + "\n" for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom))


def _plus(bench: Bench) -> list[Problem]:
    out = []
    imports = {p.id: _imports(p.tests.code) for p in load_mbpp()} if bench == "mbpp+" else {}
    for p in load_evalplus(bench):  # type: ignore[arg-type]
        if p.dataset == "humaneval":
            public = _first_test(p.test, p.entry_point)
        else:  # the assert the prompt shows (MBPP+'s `assertion` field may differ), with MBPP's imports
            public = _first_test(imports.get(p.id, "") + _prompt_assert(p.prompt), None)
        out.append(Problem(id=p.id, bench=bench, dataset=p.dataset, prompt=p.prompt, entry_point=p.entry_point,
                           reference=p.reference, public=public, base_inputs=tuple(p.base_input),
                           plus_inputs=tuple(p.plus_input), atol=p.atol))
    return out


def _number(problem_id: str) -> str:
    return problem_id.rsplit("/", 1)[-1]


def in_split(problem_id: str, split: str) -> bool:
    return split == "all" or mbpp_split(problem_id) == split


def split_problems(bench: str, split: str | None = None) -> list[Problem]:
    """All of the benchmark's problems in ``split`` (None: its default), in order."""
    if bench not in BENCHES:
        raise ConfigError(f"unknown benchmark {bench!r}; use one of: {', '.join(BENCHES)}")
    try:
        chosen = resolve_split(bench, split)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    problems = _plus(bench) if bench in EVALPLUS_FILES else _plain(bench)  # type: ignore[arg-type]
    return [p for p in problems if in_split(p.id, chosen)]


def load_problems(bench: str, ids: Sequence[str] = (), limit: int | None = None,
                  split: str | None = None) -> list[Problem]:
    """The benchmark's problems of ``split`` (None: the benchmark's default, ``DEFAULT_SPLIT``) in order;
    then ``ids`` ("mbpp/2", "Mbpp/2" or "2") picks some, ``limit`` keeps the first so many. Unknown
    benchmarks, splits and ids, and ids outside the split, are a ``ConfigError``."""
    problems = split_problems(bench, split)
    if ids:
        by_number = {_number(p.id): p for p in problems}
        wanted: list[Problem] = []
        missing: list[str] = []
        for raw in ids:
            prefix, _, _ = raw.strip().lower().rpartition("/")
            p = by_number.get(_number(raw.strip()))
            if p is None or (prefix and prefix != p.dataset):
                missing.append(raw)
            elif p not in wanted:
                wanted.append(p)
        if missing:
            _no_such(bench, resolve_split(bench, split), missing)
        problems = wanted
    return problems[:limit] if limit is not None else problems


def _no_such(bench: str, split: str, missing: Sequence[str]) -> NoReturn:
    """Raise the error for ids that are not among the split's problems: outside the split, or unknown."""
    every = {_number(p.id): p for p in split_problems(bench, "all")}
    outside = [raw for raw in missing if (p := every.get(_number(raw.strip()))) is not None
               and raw.strip().lower().rpartition("/")[0] in ("", p.dataset)]
    if outside:
        raise ConfigError(f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in {bench}'s {split} "
                          f"split (task ids {SPLIT_IDS[split]}); give ids of that split, or --split all")
    first = next(iter(every.values()))
    raise ConfigError(f"{bench} has no problem {', '.join(missing)}; ids look like {first.id} "
                      f"(or just {_number(first.id)})")
