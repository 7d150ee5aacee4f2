"""The closed loop on one machine: does codestill's verified data make a real student better?

Every stage is the command a user runs, in a subprocess, into ``--out`` (a rerun resumes; a finished
stage is read back, not redone):

    teach      ``codestill sim --teacher realistic --bug-rate B`` (planted bugs, flawed tests, a critic that
               errs) answers ``codestill generate --pipeline solve`` on MBPP's train+validation problems
               (``codestill.data.load_mbpp_split``: 464, or the first ``--teach``), asserts visible
    export     ``codestill export`` (decontaminated against MBPP's test split and HumanEval) with code
               records only (``--no-forward-plans --no-backward-plans --no-plan-conditioned``), and
               ``codestill export --unverified``: the teacher's first answers, bugs included, no gate;
               the same number of them is drawn (seeded) so both students see as many records
    train      ``codestill train`` fine-tunes SmolLM2-135M-Instruct (``codestill models smollm2``) on each:
               full fine-tuning (``--lora`` for adapters), the same seed; the verified student trains
               ``--epochs`` epochs and the unverified one exactly as many optimizer steps
    score      ``codestill eval --bench mbpp --split test`` (sanitized test split, 257 problems, or the first
               ``--problems``), greedy pass@1, for the base model and both students (``--humaneval``:
               HumanEval too); excluded problems count as failures. 95 % intervals: bootstrap over
               problems (paired for the differences), 10,000 resamples
    round 2+   (``--rounds 2``) the problems of MBPP's *validation* split the last verified student fails
               become the next round's seeds through ``--pipeline evol+solve``; the new verified records
               join the old ones and a fresh student is trained from the base and scored the same way.
               The test split never feeds the loop.

    .venv/bin/python bench/distill.py                               # everything (hours on 2 CPU cores)
    .venv/bin/python bench/distill.py --teach 120 --problems 60     # a quick run
    .venv/bin/python bench/distill.py --device cuda --rounds 2      # a GPU: bf16, larger batches, MFU

Last line (MBPP test split; verified = round 1, matched with unverified; records = round 1's per student):

    distill: base_pass1=<float> verified_pass1=<float> unverified_pass1=<float> records=<int> train_tokens_per_s=<float>
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from codestill.data import load_mbpp_split
from codestill.records import read_jsonl
from codestill.schemas import SFTRecord

console = Console(stderr=True, width=160, highlight=False)
CLI = str(Path(sys.executable).with_name("codestill"))
CODE_ONLY = ("--no-forward-plans", "--no-backward-plans", "--no-plan-conditioned")


def run(args: Sequence[str], env: dict[str, str], capture: bool = False) -> str:
    """A codestill command; its progress shows on stderr, a failure ends the bench with its message."""
    done = subprocess.run([CLI, *args], env=env, text=True, stdout=subprocess.PIPE if capture else None,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"distill: `codestill {' '.join(args[:3])} ...` failed (exit {done.returncode})")
    return done.stdout or ""


class Stages:
    """Wall time of each stage, printed as it ends and kept for the summary table."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def __call__(self, name: str, fn: Any, *a: Any) -> Any:
        console.rule(name)
        start = time.perf_counter()
        out = fn(*a)
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start
        console.print(f"[bold]{name}[/] took {self.times[name]:.0f} s")
        return out


def teach(out: Path, seeds: Path, url: str, pipeline: str, env: dict[str, str], concurrency: int) -> None:
    run(["generate", "--seeds", str(seeds), "--pipeline", pipeline, "--model", f"openai:codestill-sim@{url}",
         "--out", str(out), "--concurrency", str(concurrency), "--set", "llm.api_key=codestill-sim",
         "--set", f"memory.path={out.parent / 'memory'}"], env)


def export(run_dir: Path, out: Path, env: dict[str, str], unverified: bool = False) -> list[SFTRecord]:
    run(["export", str(run_dir), "--out", str(out), *(["--unverified"] if unverified else CODE_ONLY)], env,
        capture=True)
    return list(read_jsonl(out / "sft.jsonl", SFTRecord))


def write_records(path: Path, records: Sequence[SFTRecord]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in records))
    os.replace(tmp, path)
    return path


def train(data: Path, out: Path, student: Path, a: argparse.Namespace, env: dict[str, str],
          steps: int | None = None) -> dict[str, Any]:
    result = out / "train_result.json"
    if not result.is_file():
        length = ["--epochs", str(a.epochs)] if steps is None else ["--max-steps", str(steps)]
        run(["train", "--data", str(data), "--student", str(student), "--out", str(out), "--seed", str(a.seed),
             "--max-length", str(a.max_length), *length, *(["--lora"] if a.lora else []),
             *(["--lr", str(a.learning_rate)] if a.learning_rate else [])], env)
    return json.loads(result.read_text())


def score(model: Path, bench: str, split: str, out: Path, a: argparse.Namespace, env: dict[str, str],
          limit: int | None) -> dict[str, bool]:
    """Greedy pass@1 per problem (excluded ones failed), in benchmark order."""
    # codestill eval resumes: samples already on disk are scored again, not generated again
    run(["eval", "--model", str(model), "--bench", bench, "--split", split, "--out", str(out),
         "--batch-size", str(a.eval_batch), *(["--limit", str(limit)] if limit else [])], env, capture=True)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return {r["problem"]: bool(r.get("c", 0)) and "excluded" not in r for r in rows}


def interval(values: np.ndarray, rng: np.random.Generator, n: int = 10_000) -> tuple[float, float]:
    """The bootstrap 95 % interval of a mean over problems (rows of ``values`` resampled together)."""
    picks = rng.integers(0, len(values), size=(n, len(values)))
    means = values[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def report(scores: dict[str, dict[str, bool]], title: str, seed: int) -> dict[str, float]:
    problems = list(next(iter(scores.values())))
    table = Table(title=title, title_justify="left")
    for column in ("model", "pass@1", "95 % interval", "minus base (paired 95 %)"):
        table.add_column(column, justify="left" if column == "model" else "right")
    base = np.array([scores["base"][p] for p in problems], dtype=float)
    means = {}
    for name, by_problem in scores.items():
        x = np.array([by_problem[p] for p in problems], dtype=float)
        low, high = interval(x, np.random.default_rng(seed))
        d_low, d_high = interval(x - base, np.random.default_rng(seed))
        means[name] = float(x.mean())
        table.add_row(name, f"{x.mean():.3f}", f"[{low:.3f}, {high:.3f}]",
                      "" if name == "base" else f"{x.mean() - base.mean():+.3f} [{d_low:+.3f}, {d_high:+.3f}]")
    console.print(table)
    if "verified" in scores and "unverified" in scores:
        diff = np.array([scores["verified"][p] - scores["unverified"][p] for p in problems], dtype=float)
        low, high = interval(diff, np.random.default_rng(seed))
        console.print(f"verified - unverified: {diff.mean():+.3f} [{low:+.3f}, {high:+.3f}] over {len(problems)} "
                      f"problems ({'within noise' if low <= 0 <= high else 'outside noise'})")
    return means


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/distill-bench"), help="Everything; a rerun resumes.")
    p.add_argument("--teach", type=int, default=None, help="MBPP train+validation problems to teach on (all 464).")
    p.add_argument("--problems", type=int, default=None, help="MBPP test problems scored (all 257); also caps the "
                   "validation problems a later round looks at (all 43).")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--humaneval", action="store_true", help="Score HumanEval too.")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bug-rate", type=float, default=0.2, help="The teacher's planted bugs, besides its flaws.")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-length", type=int, default=1024)
    # A few hundred short records are a few dozen steps: at codestill train's 2e-5 a 135M model barely moves.
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--lora", action="store_true", help="LoRA adapters instead of full fine-tuning.")
    p.add_argument("--eval-batch", type=int, default=None, help="Default 16 on cpu, 64 on cuda.")
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args()
    a.eval_batch = a.eval_batch or (64 if a.device == "cuda" else 16)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **({"CUDA_VISIBLE_DEVICES": ""} if a.device == "cpu" else {})}
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages()

    from codestill._models import smollm2_dir
    from codestill.sim import SimConfig, serve_subprocess

    base = stages("model", smollm2_dir)
    teaching = load_mbpp_split("train", "validation")[: a.teach]
    seeds = write_seeds(out / "round-1" / "seeds.jsonl", [t.to_task() for t in teaching])
    benches = [("mbpp", "test", a.problems)] + ([("humaneval", "all", a.problems)] if a.humaneval else [])
    sim = SimConfig(seed=a.seed, teacher="realistic", bug_rate=a.bug_rate, cache_dir=str(out / "sim-cache"))
    with serve_subprocess(sim) as url:
        r1 = out / "round-1"
        stages("teach", teach, r1 / "run", seeds, url, "solve", env, a.concurrency)
        verified = stages("export", export, r1 / "run", r1 / "export-verified", env)
        pool = stages("export", export, r1 / "run", r1 / "export-unverified", env, True)
        drawn = random.Random(a.seed).sample(pool, min(len(verified), len(pool)))
        v_data = write_records(r1 / "verified.jsonl", verified)
        u_data = write_records(r1 / "unverified.jsonl", drawn)
        console.print(f"records: {len(verified)} verified, {len(drawn)} unverified drawn from {len(pool)} first "
                      f"answers ({sum('code:unverified' in r.tags for r in pool)} trajectories)")
        v_train = stages("train", train, v_data, r1 / "student-verified", base, a, env)
        u_train = stages("train", train, u_data, r1 / "student-unverified", base, a, env, v_train["global_step"])
        students = {"base": base, "verified": Path(v_train["model_dir"]), "unverified": Path(u_train["model_dir"])}
        results = {}
        for bench, split, limit in benches:
            scores = {name: stages("score", score, model, bench, split, out / "eval" / f"{name}-{bench}", a, env,
                                   limit) for name, model in students.items()}
            results[bench] = report(scores, f"round 1 on {bench} ({split} split)", a.seed)
        records = verified
        last = students["verified"]
        for r in range(2, a.rounds + 1):
            last, records = stages(f"round {r}", next_round, r, out, last, records, base, url, a, env, benches)
    console.rule("stages")
    for name, seconds in stages.times.items():
        console.print(f"  {name:<10} {seconds:8.0f} s")
    mbpp = results["mbpp"]
    tokens_per_s = v_train["tokens_per_s"]
    if v_train.get("mfu") is not None:
        console.print(f"MFU (verified student): {v_train['mfu']:.3f}")
    print(f"distill: base_pass1={mbpp['base']:.4f} verified_pass1={mbpp['verified']:.4f} "
          f"unverified_pass1={mbpp['unverified']:.4f} records={len(verified)} train_tokens_per_s={tokens_per_s:.1f}")


def write_seeds(path: Path, tasks: Sequence[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        path.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    return path


def next_round(r: int, out: Path, student: Path, records: list[SFTRecord], base: Path, url: str,
               a: argparse.Namespace, env: dict[str, str], benches: list[tuple[str, str, int | None]]
               ) -> tuple[Path, list[SFTRecord]]:
    """Round ``r``: the validation problems ``student`` fails seed an evol+solve run; its verified records
    join ``records``; a fresh student trains on all of them and is scored like round 1's."""
    here = out / f"round-{r}"
    passed = score(student, "mbpp", "validation", here / "validation-eval", a, env, a.problems)
    failed = [pid for pid, ok in passed.items() if not ok]
    console.print(f"round {r}: the student fails {len(failed)} of {len(passed)} validation problems; they seed it")
    by_id = {t.id: t for t in load_mbpp_split("validation")}
    seeds = write_seeds(here / "seeds.jsonl", [by_id[pid].to_task() for pid in failed if pid in by_id])
    teach(here / "run", seeds, url, "evol+solve", env, a.concurrency)
    new = export(here / "run", here / "export-verified", env)
    records = records + new
    data = write_records(here / "verified.jsonl", records)
    result = train(data, here / "student-verified", base, a, env)
    for bench, split, limit in benches:
        scores = {"base": score(base, bench, split, out / "eval" / f"base-{bench}", a, env, limit),
                  f"round {r}": score(Path(result["model_dir"]), bench, split, here / f"eval-{bench}", a, env, limit)}
        report(scores, f"round {r} on {bench} ({split} split): {len(new)} new records, {len(records)} in all", a.seed)
    return Path(result["model_dir"]), records


if __name__ == "__main__":
    main()
