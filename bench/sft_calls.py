"""What an accepted SFT sample costs in model calls and tokens, before and after the wasted calls were
cut, and with SelfCodeAlign's several samples per instruction; measured side by side in one run.

Starts ``codestill sim`` with the imperfect-teacher profile (``--teacher realistic``) and runs
``--pipeline solve`` (through the code ``codestill generate`` uses) over the first ``--n`` problems of the
sanitized MBPP test split that MBPP+ covers, given without their asserts, once per setting, each with a
fresh memory and the same sim:

    before     solve.draft_as_final=false, solve.critic_on_failure=true: the coder writes its draft again
               when the memory returned nothing, and the critic is asked about runs that failed
    after      the defaults: the draft stands when nothing was retrieved; a failing run goes to repair
               with its failures, without a critic call
    samples=K  the defaults with solve.samples=K (``--samples``, default 3): K independent (response,
               tests) samples per plan, the passers kept, one picked at random

Each accepted sample is judged afterwards with MBPP+'s inputs (no agent saw them), so the table shows
what the saved calls cost in correctness, if anything, and the share of accepted samples whose
explanation can stand in a training record.

    .venv/bin/python bench/sft_calls.py [--n 40] [--seed 0] [--samples 3] [--concurrency 16]

Last line:

    sft_calls: before_calls_per_accepted=<float> after_calls_per_accepted=<float> before_tokens_per_accepted=<float> after_tokens_per_accepted=<float> samples_calls_per_accepted=<float> samples_tokens_per_accepted=<float>
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _progress import progress_bar
from data_precision import _Bar, judged, pick_problems, task_of
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from codestill.config import LLMConfig, MemoryConfig, Settings, SolveConfig
from codestill.run._ledger import committed
from codestill.run._open import run_local
from codestill.run._tally import Tally
from codestill.runtime import prefer_passive_openmp
from codestill.schemas import Trajectory
from codestill.sim import SimConfig, serve_subprocess, warm_tester

console = Console(stderr=True, width=200)


def settings_of(args: argparse.Namespace) -> dict[str, SolveConfig]:
    return {"before": SolveConfig(draft_as_final=False, critic_on_failure=True), "after": SolveConfig(),
            f"samples={args.samples}": SolveConfig(samples=args.samples)}


async def solve_all(args: argparse.Namespace, name: str, solve: SolveConfig, problems: list, url: str,
                    tmp: Path) -> dict[str, Any]:
    spec = f"openai:codestill-sim@{url}"
    run = tmp / f"run-{name}"
    settings = Settings(llm=LLMConfig(model=spec, api_key=SecretStr("sk-bench"), max_concurrency=args.concurrency),
                        memory=MemoryConfig(path=tmp / f"memory-{name}"), solve=solve)
    specs: dict[str, str] = dict.fromkeys(("planner", "decomposer", "coder", "tester", "critic"), spec)
    with progress_bar(console, "task") as bar:
        hooks = _Bar(bar, bar.add_task(name, total=len(problems)))
        start = time.perf_counter()
        outcome, _, _ = await run_local(settings, specs, spec, [task_of(p, "none") for p in problems], run,
                                        pipeline="solve", concurrency=args.concurrency, display=hooks)
    if outcome.fatal is not None:
        raise SystemExit(f"the {name} run failed: {outcome.fatal}")
    trajectories = [Trajectory.model_validate_json(line) for _, lines in committed(run) for line in lines]
    tally = Tally.from_run(run)
    return {"trajectories": trajectories, "calls": tally.llm_calls, "tokens": tally.tokens,
            "wall": time.perf_counter() - start}


async def main_async(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, Any]]:
    problems = pick_problems(args.n)
    sim = SimConfig(seed=args.seed, teacher="realistic", cache_dir=str(args.sim_cache))
    warm_tester(sim, [p.id for p in problems])
    out: dict[str, dict[str, Any]] = {}
    with serve_subprocess(sim) as url:
        for name, solve in settings_of(args).items():
            run = await solve_all(args, name, solve, problems, url, tmp)
            accepted = [t for t in run["trajectories"] if t.verdict == "accepted"]
            codes = {t.task.id.rsplit("/", 1)[-1]: t.final_code for t in accepted if t.final_code}
            verdicts = await judged(codes, args.sim_cache / "judge")
            n = len(accepted)
            out[name] = {"accepted": n, "wrong": sum(v is False for v in verdicts.values()),
                         "calls": run["calls"] / n if n else float("nan"),
                         "tokens": run["tokens"] / n if n else float("nan"),
                         "explained": sum(bool(t.explanation) for t in accepted) / n if n else float("nan"),
                         "passers": sum(sum(a.critique is not None and a.critique.verdict == "accept"
                                            for a in t.attempts) for t in accepted) / n if n else float("nan"),
                         "wall": run["wall"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sim-cache", type=Path, default=Path(".codestill/bench-sim-cache"))
    args = ap.parse_args()
    prefer_passive_openmp()
    with tempfile.TemporaryDirectory(prefix="codestill-sft-calls-") as d:
        r = asyncio.run(main_async(args, Path(d)))
    table = Table(title=f"cost per accepted sample: {args.n} MBPP test problems, sim --teacher realistic, "
                        f"seed {args.seed}, no given tests")
    for col in ("setting", "accepted", "wrong (MBPP+)", "LLM calls / accepted", "tokens / accepted",
                "explained", "passing samples / accepted", "wall s"):
        table.add_column(col, justify="right")
    for name, x in r.items():
        table.add_row(name, str(x["accepted"]), str(x["wrong"]), f"{x['calls']:.2f}", f"{x['tokens']:.0f}",
                      f"{x['explained']:.2f}", f"{x['passers']:.2f}", f"{x['wall']:.0f}")
    console.print(table)
    before, after = r["before"], r["after"]
    samples = r[f"samples={args.samples}"]
    console.print(f"after / before: calls {after['calls'] / before['calls']:.3f}, tokens "
                  f"{after['tokens'] / before['tokens']:.3f}; samples={args.samples} / after: calls "
                  f"{samples['calls'] / after['calls']:.3f}, tokens {samples['tokens'] / after['tokens']:.3f}")
    print(f"sft_calls: before_calls_per_accepted={before['calls']:.2f} after_calls_per_accepted={after['calls']:.2f} "
          f"before_tokens_per_accepted={before['tokens']:.0f} after_tokens_per_accepted={after['tokens']:.0f} "
          f"samples_calls_per_accepted={samples['calls']:.2f} samples_tokens_per_accepted={samples['tokens']:.0f}")


if __name__ == "__main__":
    main()
