"""EvalPlus ground truth: the reference solution's outputs and CPU times, computed in the sandbox.

EvalPlus judges a sample by comparing its outputs with the canonical solution's on every base and
plus input, and gives each input ``max(4 s, 4 x the reference's time)``. We compute those outputs
once, by running the reference in the same sandbox the samples run in (so the times are comparable),
and keep them on disk::

    <cache_dir>/<bench>-<version>-<sha256[:12]>.jsonl     one line per problem, appended as done

The file is keyed on the dataset's digest, so another dataset never reuses them; a run that stops
half-way resumes at the next problem (a torn last line is ignored). A problem whose reference fails
in the sandbox (raises, times out, returns something the codec cannot carry) gets ``error`` and is
excluded from scoring, named in the summary; errors are not cached, so the next run tries again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from codestill.data import EVALPLUS_FILES, evalplus_digest
from codestill.ports import Sandbox
from codestill.schemas import Limits, TestSuite
from training import _harness
from training._bench import Problem

CHUNK = 250  # inputs per reference run: bounded stdout, progress that moves
TRUTH_LIMITS = Limits(cpu_s=120.0, capture_bytes=32 << 20)
MIN_TIME_LIMIT_S = 4.0
TIME_LIMIT_FACTOR = 4.0
TASK_CAP_S = 60.0  # EvalPlus caps a check's total time at 60 s (+1), base and plus each


@lru_cache(maxsize=1)
def harness() -> str:
    """The harness's source, shipped at the top of the test code of every EvalPlus run."""
    return Path(_harness.__file__).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Truth:
    """Encoded (``_harness._cs_enc``) expected outputs and the reference's CPU seconds per input."""

    base: tuple[Any, ...] = ()
    base_time: tuple[float, ...] = ()
    plus: tuple[Any, ...] = ()
    plus_time: tuple[float, ...] = ()
    error: str | None = None


def cache_path(cache_dir: Path, bench: str) -> Path:
    version = EVALPLUS_FILES[bench][1]
    return cache_dir / f"{bench.rstrip('+')}plus-{version}-{evalplus_digest(bench)[:12]}.jsonl"  # type: ignore[arg-type]


def _read_cache(path: Path) -> dict[str, Truth]:
    out: dict[str, Truth] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by an interrupted run: that problem is computed again
        out[rec["id"]] = Truth(tuple(rec["base"]), tuple(rec["base_time"]), tuple(rec["plus"]),
                               tuple(rec["plus_time"]))
    return out


def _payload(problem: Problem, part: str, inputs: Sequence[Any]) -> str:
    not_none = problem.dataset == "mbpp" and problem.entry_point in _harness._CS_NOT_NONE
    return _harness._cs_pack({"entry": problem.entry_point, "not_none": not_none, part: list(inputs)})


async def _chunk(sandbox: Sandbox, problem: Problem, part: str, start: int,
                 inputs: Sequence[Any]) -> tuple[list[Any], list[float], str | None]:
    tests = f"{harness()}\n_CS = _cs_load({_payload(problem, part, inputs)!r})\n_cs_truth({part!r}, 0, {len(inputs)})\n"
    result = await sandbox.run(problem.reference, TestSuite(code=tests), TRUTH_LIMITS)
    values: list[Any] = [None] * len(inputs)
    times = [0.0] * len(inputs)
    seen = 0
    errors = []
    for line in result.stdout.splitlines():
        if not line.startswith(_harness._CS_MARK):
            continue
        _, i, value, seconds, error = json.loads(line[len(_harness._CS_MARK):])
        values[i], times[i], seen = value, seconds, seen + 1
        if error:
            errors.append(f"{part} input {start + i}: {error}")
    if result.status != "passed" or seen != len(inputs) or result.stdout_truncated_bytes:
        why = result.message or f"{seen} of {len(inputs)} outputs came back"
        return values, times, f"the reference failed in the sandbox ({result.status}: {why})"
    return values, times, (f"the reference raised or returned an unsupported value: {errors[0]}"
                           + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")) if errors else None


async def _compute(sandbox: Sandbox, problem: Problem, advance: Callable[[int], None]) -> Truth:
    parts: dict[str, tuple[list[Any], list[float]]] = {}
    for part, inputs in (("base", problem.base_inputs), ("plus", problem.plus_inputs)):
        values: list[Any] = []
        times: list[float] = []
        for start in range(0, len(inputs), CHUNK):
            chunk = inputs[start: start + CHUNK]
            got, secs, error = await _chunk(sandbox, problem, part, start, chunk)
            advance(len(chunk))
            if error:
                return Truth(error=error)
            values += got
            times += secs
        parts[part] = (values, times)
    return Truth(tuple(parts["base"][0]), tuple(parts["base"][1]), tuple(parts["plus"][0]), tuple(parts["plus"][1]))


async def reference_outputs(problems: Sequence[Problem], sandbox: Sandbox, cache_dir: Path,
                            concurrency: int, start_progress: Callable[[int], Callable[[int], None]]
                            ) -> dict[str, Truth]:
    """Truth for every problem, from the cache or computed now (``concurrency`` problems at once).

    ``start_progress(total_inputs)`` is called only when something must be computed; it returns the
    callback that advances the bar by a number of inputs.
    """
    if not problems:
        return {}
    path = cache_path(cache_dir, problems[0].bench)
    cached = _read_cache(path)
    todo = [p for p in problems if p.id not in cached]
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        advance = start_progress(sum(len(p.base_inputs) + len(p.plus_inputs) for p in todo))
        gate = asyncio.Semaphore(concurrency)

        async def one(p: Problem) -> None:
            async with gate:
                truth = await _compute(sandbox, p, advance)
            cached[p.id] = truth
            if truth.error:  # not kept: a time-out on a busy machine must get another chance next run
                return
            line = json.dumps({"id": p.id, "base": truth.base, "base_time": truth.base_time, "plus": truth.plus,
                               "plus_time": truth.plus_time})
            with path.open("a", encoding="utf-8") as f:  # one write per problem: resumable
                f.write(line + "\n")

        await asyncio.gather(*(one(p) for p in todo))
    return {p.id: cached[p.id] for p in problems}


def time_limits(times: Sequence[float]) -> list[float]:
    return [max(MIN_TIME_LIMIT_S, TIME_LIMIT_FACTOR * t) for t in times]


def plus_suite(problem: Problem, truth: Truth) -> tuple[TestSuite, Limits]:
    """The test code that judges a sample on every base and plus input, and the run's limits.

    The run's CPU limit is what EvalPlus allows a task, base and plus each: min(60 s, sum of the
    per-input limits) + 1 s, plus 2 s for loading the program and the data, plus twice the reference's
    time on inputs whose big outputs are recomputed in the run.
    """
    base_limits, plus_limits = time_limits(truth.base_time), time_limits(truth.plus_time)
    # Expected outputs are already encoded: decoding them is the sandbox's job, so wrap, do not re-encode.
    # Big outputs are recomputed by the reference inside the run: its time is added to the run's limit.
    big = [t for out, t in zip((*truth.base, *truth.plus), (*truth.base_time, *truth.plus_time), strict=True)
           if isinstance(out, dict) and "big" in out]
    not_none = problem.dataset == "mbpp" and problem.entry_point in _harness._CS_NOT_NONE
    packed = _harness._cs_pack({
        "dataset": problem.dataset, "entry": problem.entry_point, "atol": problem.atol, "failed": None,
        "not_none": not_none, "reference": problem.reference if big else "",
        "base": list(problem.base_inputs), "base_limit": base_limits,
        "plus": list(problem.plus_inputs), "plus_limit": plus_limits,
    })
    expected = _harness._cs_base64.b64encode(_harness._cs_zlib.compress(
        json.dumps({"base_out": list(truth.base), "plus_out": list(truth.plus)}).encode(), 6)).decode("ascii")
    code = (f"{harness()}\n_CS = {{**_cs_load({packed!r}), **_cs_load({expected!r})}}\n"
            "_cs_check('base')\n_cs_check('plus')\n")
    cpu = sum(min(TASK_CAP_S, sum(lim)) + 1 for lim in (base_limits, plus_limits) if lim) + 2
    cpu += 2 * sum(big) + (1 if big else 0)
    return TestSuite(code=code), Limits(cpu_s=cpu)
