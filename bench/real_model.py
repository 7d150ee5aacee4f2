"""A real model through every agent: SmolLM2-135M-Instruct behind `transformers serve`, `codestill generate`.

Takes the ``--n`` problems of the sanitized MBPP test split (task ids 11-510) that MBPP+ covers with the
shortest reference solutions, given with their MBPP asserts as a user's MBPP seeds file has them, and
runs `codestill generate --pipeline solve` on them against the real server (``--server hf`` runs the
same model in-process through ``hf:``). Every accepted solution is then judged with MBPP+'s inputs,
which no agent saw.

    unreadable_share = replies no parser could read / all replies (stats.json's per-role counts)
    tokens_per_accepted = all tokens of the run / accepted samples (all tokens when none was accepted)

``--cli PATH`` runs another checkout's `codestill` (e.g. the code before the text reply forms; then
``--no-role-limits``, which that code does not know), so a before/after pair runs on one server.

    .venv/bin/python bench/real_model.py [--n 30] [--server transformers|hf] [--concurrency 6]
        [--max-tokens 256] [--out DIR] [--cli PATH] [--no-role-limits]

On two CPU cores `transformers serve` gives about 21 tokens/s in all however many requests are in flight
(its continuous batching does not scale on a CPU), so 30 problems take over an hour; ``--server hf``
batches them in-process (about 6x the throughput) and runs the same agents, prompts and parsers.

Target: wrong_accepted = 0 and unreadable_share <= 0.2. Last line:

    real: problems=<int> accepted=<int> wrong_accepted=<int> unreadable_share=<float> tokens_per_accepted=<float>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codestill._models import smollm2_dir, transformers_serve
from codestill.config import SandboxConfig
from codestill.data import BankProblem, load_mbpp
from codestill.run import RunDir
from codestill.schemas import Trajectory
from tools.sandbox import DockerSandbox
from training.evaluate import judge, load_problems

console = Console(stderr=True, width=160)
# Short replies keep a CPU run to minutes: a plan, a verdict or a short program fits (SmolLM2 rambles on
# past its answer; a complete answer in a cut-off reply is still used).
ROLE_LIMITS = {"planner": 128, "decomposer": 128, "critic": 96, "tester": 192, "coder": 256}


def pick_problems(n: int) -> list[BankProblem]:
    """The ``n`` problems of the sanitized MBPP test split covered by MBPP+ with the shortest references."""
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    covered = {p.id.rsplit("/", 1)[-1] for p in load_problems("mbpp+")}
    split = [p for i, p in bank.items() if i in covered and 11 <= int(i) <= 510]
    return sorted(split, key=lambda p: (len(p.reference), int(p.id.rsplit("/", 1)[-1])))[:n]


def config_text(args: argparse.Namespace, tmp: Path) -> str:
    lines = ["[llm]", "temperature = 0", "timeout_s = 300", "max_retries = 1", f"max_tokens = {args.max_tokens}"]
    if not args.no_role_limits:
        lines += ["[llm.role_max_tokens]", *(f"{r} = {n}" for r, n in ROLE_LIMITS.items())]
    # A CPU generates a few tokens per second per request: the per-task time budget (900 s) is for real
    # servers, and here it would end tasks as budget_exceeded before their tests ran.
    lines += ["[solve]", "max_repairs = 1", "max_replans = 0", "tester_samples = 1", "time_budget_s = 14400",
              "[memory]", f'path = "{tmp / "memory"}"']
    return "\n".join(lines) + "\n"


def generate(args: argparse.Namespace, problems: list[BankProblem], spec: str, tmp: Path, run: Path) -> float:
    seeds = tmp / "tasks.jsonl"
    seeds.write_text("".join(p.to_task().model_dump_json() + "\n" for p in problems))
    (tmp / "codestill.toml").write_text(config_text(args, tmp))
    cli = args.cli or str(Path(sys.executable).with_name("codestill"))
    start = time.perf_counter()
    # The run's own progress bar goes to this terminal (stderr); its stdout (one JSON summary) is dropped.
    done = subprocess.run([cli, "generate", "--seeds", str(seeds), "--out", str(run), "--model", spec,
                           "--config", str(tmp / "codestill.toml"), "--concurrency", str(args.concurrency),
                           "--json"], stdout=subprocess.DEVNULL, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"codestill generate failed (exit code {done.returncode}); see its message above")
    return time.perf_counter() - start


async def wrong_of(accepted: dict[str, str], cache: Path) -> list[str]:
    if not accepted:
        return []
    async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
        results = await judge("mbpp+", accepted, sandbox, cache)
    return sorted(i for i, r in results.items() if r is None or not r.passed)


def report(trajectories: list[Trajectory], stats: dict[str, Any], wrong: list[str], wall: float) -> dict[str, Any]:
    replies: dict[str, dict[str, int]] = stats.get("replies") or {}
    table = Table(title=f"{len(trajectories)} problems, {stats['llm_calls']} model calls, {wall:.0f} s")
    for col in ("role", "replies", "unreadable", "cut off (length)"):
        table.add_column(col, justify="left" if col == "role" else "right")
    for role, r in replies.items():
        table.add_row(role, str(r["replies"]), str(r["unreadable"]), str(r["cut_off"]))
    console.print(table)
    reasons: dict[str, int] = {}
    for t in trajectories:
        if t.verdict != "accepted":
            head = t.reason.split(":", 1)[0]
            reasons[head] = reasons.get(head, 0) + 1
    console.print(f"rejections: {json.dumps(reasons)}")
    failures = [f for t in trajectories for f in t.failures]
    for role in replies:
        seen = [f for f in failures if f.startswith(role)][:2]
        for f in seen:
            console.print(f"  e.g. {f[:240]}", highlight=False, markup=False)
    total = sum(r["replies"] for r in replies.values())
    unreadable = sum(r["unreadable"] for r in replies.values())
    accepted = sum(t.verdict == "accepted" for t in trajectories)
    tokens = stats["tokens"]["total"]
    return {"problems": len(trajectories), "accepted": accepted, "wrong": len(wrong),
            "share": unreadable / total if total else float("nan"), "per": tokens / max(accepted, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--server", choices=("transformers", "hf"), default="transformers")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--out", type=Path, help="Keep the run directory here (default: a temporary one).")
    ap.add_argument("--cli", help="The codestill executable to run (default: this checkout's).")
    ap.add_argument("--no-role-limits", action="store_true", help="Leave llm.role_max_tokens out of the config.")
    args = ap.parse_args()
    problems = pick_problems(args.n)
    model = smollm2_dir()
    with tempfile.TemporaryDirectory(prefix="codestill-real-") as t:
        tmp = Path(t)
        run = args.out or tmp / "run"
        serving = (transformers_serve(model, extra=("--continuous-batching",)) if args.server == "transformers"
                   else nullcontext(None))
        with serving as url:
            spec = f"openai:{model}@{url}" if url else f"hf:{model}"
            console.print(f"{len(problems)} problems through {spec}")
            wall = generate(args, problems, spec, tmp, run)
        trajectories = RunDir(run).trajectories().trajectories
        stats = json.loads((run / "stats.json").read_text())
        accepted = {t.task.id: t.final_code for t in trajectories if t.verdict == "accepted" and t.final_code is not None}
        wrong = asyncio.run(wrong_of(accepted, tmp / "truth"))
        if wrong:
            console.print(f"[red]wrong accepted[/]: {', '.join(wrong)}")
    r = report(trajectories, stats, wrong, wall)
    print(f"real: problems={r['problems']} accepted={r['accepted']} wrong_accepted={r['wrong']} "
          f"unreadable_share={r['share']:.3f} tokens_per_accepted={r['per']:.1f}")


if __name__ == "__main__":
    main()
