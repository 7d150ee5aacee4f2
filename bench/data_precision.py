"""Data precision: how many accepted samples are really right, with a teacher that is not the answer key.

Starts ``codestill sim`` with the imperfect-teacher profile (``--teacher realistic``: flawed test suites,
wrong first answers, repairs that bend to wrong tests, unreadable or over-confident critiques; see
``codestill/sim/_teacher.py``) and runs ``--pipeline solve`` over the first ``--n`` problems of the
sanitized MBPP test split (task ids 11-510) that MBPP+ covers, through the code a `codestill generate`
run uses (``codestill.run._open.run_local``), twice in one run on the same problems: with the strict
gates (``solve.gates = "strict"``, the default) and with wave 1's (``"legacy"``), each with a fresh memory.

Every accepted solution is then judged with tests no agent saw: MBPP+'s base and plus inputs under the
EvalPlus protocol (``training.evaluate.judge``). The tasks are given without their MBPP asserts
(``--given-tests none``, the default): the tester's suite is all the evidence the gates have, as for
SelfCodeAlign's and Evol-Instruct's instructions, which come without tests.

    precision = 1 - wrong_accepted / accepted
    yield = accepted / problems whose MBPP reference passes MBPP+
    mutation_score = the mean over accepted samples of the share of the code's mutants its tests killed

The sim answers from the plain MBPP references, and some of those fail MBPP+ (35 of the default 200): a
teacher whose own understanding is wrong writes wrong code *and* tests that agree with it, which no gate
built on the teacher's own tests can see. The table therefore also splits the accepted samples by whether
the problem's reference passes MBPP+, and the line before the last gives precision and yield on the
problems whose reference passes (the gates' own precision, with the same yield as the last line's).

    .venv/bin/python bench/data_precision.py [--n 200] [--seed 0] [--concurrency 32] [--given-tests none|visible]
        [--test-flaw-rate R] [--code-flaw-rate R] [--bend-rate R] [--critic-flaw-rate R] [--plan-flaw-rate R]
        [--stubborn-rate R] [--sim-cache DIR]

Target: precision >= 0.99 and yield >= 0.7. Last line:

    precision: accepted=<int> wrong_accepted=<int> precision=<float> yield=<float> mutation_score=<float> baseline_precision=<float>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from _progress import progress_bar
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from codestill.config import LLMConfig, MemoryConfig, SandboxConfig, Settings, SolveConfig
from codestill.data import BankProblem, load_mbpp
from codestill.run._ledger import committed
from codestill.run._open import run_local
from codestill.run._tally import Tally
from codestill.runtime import prefer_passive_openmp
from codestill.schemas import Task, Trajectory
from codestill.sim import SimConfig, serve_subprocess, warm_tester
from tools.sandbox import DockerSandbox
from training.evaluate import judge, load_problems

console = Console(stderr=True, width=200)
RATES = ("test_flaw_rate", "code_flaw_rate", "bend_rate", "critic_flaw_rate", "plan_flaw_rate", "stubborn_rate")


class _Bar:
    def __init__(self, bar: Any, task: Any) -> None:
        self.bar, self.task, self.sandbox = bar, task, None

    def start(self, _input_id: str) -> None:
        pass

    def done(self, _entry: Any, _trajectories: Any) -> None:
        self.bar.advance(self.task)


def pick_problems(n: int) -> list[BankProblem]:
    """The first ``n`` problems of the sanitized MBPP test split (ids 11-510) that MBPP+ covers."""
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    numbers = [p.id.rsplit("/", 1)[-1] for p in load_problems("mbpp+")]
    covered = sorted((i for i in numbers if i in bank and 11 <= int(i) <= 510), key=int)
    return [bank[i] for i in covered[:n]]


def task_of(p: BankProblem, given: str) -> Task:
    task = p.to_task()
    return task if given == "visible" else task.model_copy(update={"tests": None})


async def solve_all(args: argparse.Namespace, problems: list[BankProblem], gates: Literal["strict", "legacy"], url: str,
                    tmp: Path) -> dict[str, Any]:
    spec = f"openai:codestill-sim@{url}"
    settings = Settings(llm=LLMConfig(model=spec, api_key=SecretStr("sk-bench"), max_concurrency=args.concurrency),
                        memory=MemoryConfig(path=tmp / f"memory-{gates}"), solve=SolveConfig(gates=gates))
    specs: dict[str, str] = dict.fromkeys(("planner", "decomposer", "coder", "tester", "critic"), spec)
    with progress_bar(console, "task") as bar:
        hooks = _Bar(bar, bar.add_task(f"{gates} gates", total=len(problems)))
        start = time.perf_counter()
        outcome, _, sandbox = await run_local(settings, specs, spec, [task_of(p, args.given_tests) for p in problems],
                                              tmp / f"run-{gates}", pipeline="solve", concurrency=args.concurrency,
                                              display=hooks)
    if outcome.fatal is not None:
        raise SystemExit(f"the {gates} run failed: {outcome.fatal}")
    trajectories = [Trajectory.model_validate_json(line) for _, lines in committed(tmp / f"run-{gates}")
                    for line in lines]
    tally = Tally.from_run(tmp / f"run-{gates}")
    return {"trajectories": trajectories, "calls": tally.llm_calls, "sandbox_runs": sandbox["runs"],
            "wall": time.perf_counter() - start}


async def judged(codes: dict[str, str], cache: Path) -> dict[str, bool | None]:
    """MBPP+ verdicts by problem number: True passed, False failed, None not judgeable."""
    if not codes:
        return {}
    async with DockerSandbox(SandboxConfig()) as sandbox:
        results = await judge("mbpp+", codes, sandbox, cache)
    return {k.rsplit("/", 1)[-1]: (None if r is None else r.passed) for k, r in results.items()}


def score(run: dict[str, Any], verdicts: dict[str, bool | None], good_refs: set[str]) -> dict[str, Any]:
    accepted = [t for t in run["trajectories"] if t.verdict == "accepted"]
    numbers = [t.task.id.rsplit("/", 1)[-1] for t in accepted]
    wrong = sum(verdicts.get(i) is False for i in numbers)
    on_good = [i for i in numbers if i in good_refs]
    scores = [t.mutation_score for t in accepted if t.mutation_score is not None]
    n = len(accepted)
    return {"accepted": n, "wrong": wrong, "precision": 1 - wrong / n if n else float("nan"),
            "yield": n / len(good_refs) if good_refs else float("nan"),
            "mutation": statistics.mean(scores) if scores else float("nan"),
            "good_accepted": len(on_good), "good_wrong": sum(verdicts.get(i) is False for i in on_good),
            "bad_accepted": n - len(on_good), "unjudged": sum(verdicts.get(i) is None for i in numbers),
            "calls_per": run["calls"] / n if n else float("nan"),
            "runs_per": run["sandbox_runs"] / n if n else float("nan"), "wall": run["wall"]}


async def main_async(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, Any], dict[str, Any], int]:
    problems = pick_problems(args.n)
    rates = {k: getattr(args, k) for k in RATES if getattr(args, k) is not None}
    sim = SimConfig(seed=args.seed, teacher="realistic", cache_dir=str(args.sim_cache), **rates)
    console.print(f"{len(problems)} problems; the sim works out its tester's tests first (kept in {args.sim_cache})")
    warm_tester(sim, [p.id for p in problems])
    cache = args.sim_cache / "judge"
    refs = await judged({p.id.rsplit("/", 1)[-1]: p.reference for p in problems}, cache)
    good_refs = {i for i, ok in refs.items() if ok}
    runs: dict[str, dict[str, Any]] = {}
    with serve_subprocess(sim) as url:
        for gates in ("strict", "legacy"):
            runs[gates] = await solve_all(args, problems, gates, url, tmp)
    out = {}
    for gates, run in runs.items():
        codes = {t.task.id.rsplit("/", 1)[-1]: t.final_code for t in run["trajectories"]
                 if t.verdict == "accepted" and t.final_code}
        out[gates] = score(run, await judged(codes, cache), good_refs)
        if args.dump:
            wrong = [t.model_dump(mode="json") for t in run["trajectories"] if t.verdict == "accepted"
                     and t.task.id.rsplit("/", 1)[-1] in codes]
            Path(args.dump).with_suffix(f".{gates}.json").write_text(json.dumps(wrong))
    return out["strict"], out["legacy"], len(good_refs)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--given-tests", choices=("none", "visible"), default="none")
    ap.add_argument("--sim-cache", type=Path, default=Path(".codestill/bench-sim-cache"))
    ap.add_argument("--dump", default=None, help="write the accepted trajectories of each run to DUMP.<gates>.json")
    for rate in RATES:
        ap.add_argument(f"--{rate.replace('_', '-')}", dest=rate, type=float, default=None)
    args = ap.parse_args()
    prefer_passive_openmp()
    with tempfile.TemporaryDirectory(prefix="codestill-precision-bench-") as d:
        strict, legacy, good = asyncio.run(main_async(args, Path(d)))
    table = Table(title=f"data precision: {args.n} MBPP test problems (MBPP+ covers), sim --teacher realistic, "
                        f"seed {args.seed}, given tests: {args.given_tests}; {good} references pass MBPP+")
    for col in ("gates", "accepted", "wrong", "precision", "yield", "reference passes: accepted / wrong",
                "reference fails: accepted", "mutation score", "LLM calls / accepted", "sandbox runs / accepted",
                "wall s"):
        table.add_column(col, justify="right")
    for name, r in (("strict", strict), ("legacy (wave 1)", legacy)):
        table.add_row(name, str(r["accepted"]), str(r["wrong"]), f"{r['precision']:.3f}", f"{r['yield']:.3f}",
                      f"{r['good_accepted']} / {r['good_wrong']}", str(r["bad_accepted"]), f"{r['mutation']:.3f}",
                      f"{r['calls_per']:.1f}", f"{r['runs_per']:.1f}", f"{r['wall']:.0f}")
    console.print(table)
    # The gates' own precision: on the problems the teacher knows (its reference passes MBPP+). What the
    # last line adds beyond it are accepted answers to problems whose reference itself is wrong.
    known = strict["good_accepted"]
    print(f"known problems ({good} whose reference passes MBPP+): accepted={known} "
          f"wrong_accepted={strict['good_wrong']} precision={1 - strict['good_wrong'] / known if known else float('nan'):.4f} "
          f"yield={known / good if good else float('nan'):.4f} baseline_precision="
          f"{1 - legacy['good_wrong'] / legacy['good_accepted'] if legacy['good_accepted'] else float('nan'):.4f} "
          f"baseline_yield={legacy['good_accepted'] / good if good else float('nan'):.4f}")
    print(f"precision: accepted={strict['accepted']} wrong_accepted={strict['wrong']} precision={strict['precision']:.4f} "
          f"yield={strict['yield']:.4f} mutation_score={strict['mutation']:.4f} "
          f"baseline_precision={legacy['precision']:.4f}")


if __name__ == "__main__":
    main()
