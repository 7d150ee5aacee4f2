"""What an evaluation reports: the protocol in words, per-problem results, the summary and its table, and the
warning when the model was trained on problems it is scored on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from training._bench import SPLIT_IDS, Problem
from training._evalrun import SampleRecord
from training._harness import _CS_FLOAT_ATOL, _CS_RTOL
from training._passk import pass_at_k
from training._truth import MIN_TIME_LIMIT_S, TASK_CAP_S, TIME_LIMIT_FACTOR

DATASETS = {
    "humaneval": "HumanEval (Chen et al. 2021)",
    "mbpp": "MBPP, sanitized (Austin et al. 2021)",
    "humaneval+": "HumanEval+ v0.1.10 (EvalPlus, Liu et al. 2023)",
    "mbpp+": "MBPP+ v0.2.0 (EvalPlus, Liu et al. 2023)",
}
WARN_IDS = 8  # problem ids a warning names before "..."


def dataset_text(bench: str, split: str, in_split: int, evaluated: int) -> str:
    """The benchmark, its split and how many problems, e.g. "MBPP, sanitized (Austin et al. 2021), test
    split (task ids 11-510): 257 problems"; "16 of its 257 problems" when --ids or --limit chose fewer."""
    where = ""
    if bench.startswith("mbpp"):
        where = ", all splits" if split == "all" else f", {split} split (task ids {SPLIT_IDS[split]})"
    count = f"{in_split} problems" if evaluated == in_split else f"{evaluated} of its {in_split} problems"
    return f"{DATASETS[bench]}{where}: {count}"


def some_ids(ids: Sequence[str]) -> str:
    return ", ".join(ids[:WARN_IDS]) + (", ..." if len(ids) > WARN_IDS else "")


def overlap_warning(overlap: Sequence[str], evaluated: int, source: str | None) -> str:
    """The console warning for problems a model was trained on (rich markup)."""
    return (f"[yellow]warning:[/] {len(overlap)} of the {evaluated} problems evaluated are in this model's "
            f"training data ({some_ids(overlap)}; read from {source}): their scores measure recall, not skill; "
            "evaluate on problems it did not train on (--split test for MBPP) or export its data with "
            "decontamination on.")


class EvalSummary(BaseModel):
    """What ``evaluate`` returns and writes to ``summary.json``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    bench: str
    split: str  # test | validation | train | prompt | all
    dataset: str  # the benchmark, split and problem count in words
    n: int
    k: tuple[int, ...]
    temperature: float
    plan_samples: int
    pass_at_k: dict[str, float]  # "pass@1" -> mean over scored and excluded problems (an excluded one is 0)
    pass_at_k_scored: dict[str, float]  # the mean over the scored problems only
    problems: int  # scored: every one of its n samples is on disk
    samples: int
    passed: int
    statuses: dict[str, int]
    excluded: dict[str, str] = {}  # problem -> why it cannot be scored (its reference fails in the sandbox)
    incomplete: list[str] = []  # problems still missing samples (transient faults): rerun to finish
    training_data: str | None = None  # the model's training_data.json, when it has one
    training_overlap: list[str] = []  # evaluated problems found in that training data, in benchmark order
    generated: int = 0  # samples produced by this run
    reused: int = 0  # samples read back from an earlier run of the same directory
    protocol: str
    out: Path
    wall_s: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.incomplete


def protocol(bench: str, *, dataset: str, split: str, n: int, k: Sequence[int], temperature: float, chat: bool,
             stops_at_code: bool, plan_samples: int, plan_temperature: float, cpu_s: float, memory_mb: int) -> str:
    """The evaluation protocol, in the words a reader of the numbers needs."""
    lines = [f"benchmark: {dataset}, shipped in codestill/data (see NOTICE.md)."]
    if bench == "mbpp+" and split == "all":
        lines.append("split: all of MBPP+, as EvalPlus publishes it, MBPP's train and validation tasks included; a "
                     "model trained on MBPP's train or validation data must be scored with --split test.")
    elif bench == "mbpp+":
        lines.append(f"split: MBPP+ restricted to MBPP's {split} split (EvalPlus publishes all of MBPP+).")
    elif bench == "mbpp" and split != "test":
        lines.append(f"split: {split} (the published MBPP protocol scores the test split).")
    if not chat:
        prompt = "the problem's own prompt, continued (base model; cut at the Codex stop sequences)"
    elif stops_at_code:
        prompt = ("EvalPlus's instruction prompt (one user message); generation stops once the reply's first "
                  "```python block has closed, the reply is recorded up to there, and that block is the code")
    else:
        prompt = "EvalPlus's instruction prompt (one user message; the code is the reply's last ```python block)"
    lines.append(f"prompt: {prompt}.")
    way = "greedy decoding" if temperature == 0 else f"temperature {temperature:g} (top-p 0.95 for local models)"
    lines.append(f"sampling: n={n} samples per problem, {way}.")
    if plan_samples:
        lines.append(f"plan sampling (CodePLAN): each sample is chosen among {plan_samples} candidates, each the "
                     f"code written for its own sampled plan (plans at temperature {plan_temperature:g}); the first "
                     "candidate that passes the problem's public test (its first assert) is kept, else the one "
                     "passing most; only the kept one is scored on the hidden tests.")
    if bench.endswith("+"):
        lines.append(
            "execution (EvalPlus protocol): each sample runs in the codestill Docker sandbox on every base input "
            "(the original tests' inputs) and every plus input; it passes only if all its outputs match the "
            "canonical solution's, computed once in the same sandbox. Outputs are compared exactly, floats with "
            f"np.allclose-style tolerance (rtol {_CS_RTOL:g}, the task's atol, {_CS_FLOAT_ATOL:g} for float "
            "outputs where the task gives none) and EvalPlus's special oracles for the tasks that have them; "
            f"each input gets max({MIN_TIME_LIMIT_S:g} s, {TIME_LIMIT_FACTOR:g} x the reference's time) of CPU "
            "(EvalPlus times wall-clock; CPU time keeps verdicts steady on a busy machine), base and plus each at "
            f"most {TASK_CAP_S:g} s in all; checking stops at the first failing input. Memory: {memory_mb} MB per "
            "sandbox container (EvalPlus allows 4 GB; --set sandbox.memory_mb=4096 to match). Problems whose "
            "reference fails in the sandbox are excluded and named.")
    else:
        tests = "its check(candidate) function" if bench == "humaneval" else "its test imports and asserts"
        lines.append(f"execution: each sample runs in the codestill Docker sandbox against the problem's own tests "
                     f"({tests}), {cpu_s:g} s of CPU and {memory_mb} MB per sample; it passes only if every "
                     "assert passes.")
    lines.append(f"score: pass@k for k in {', '.join(map(str, k))}: the unbiased estimator "
                 "1 - C(n-c, k) / C(n, k) (c of n samples passing), averaged over problems; an excluded problem "
                 "counts as failed (as in EvalPlus), the mean over the scored problems alone is given beside it.")
    return "\n".join(lines)


def problem_rows(problems: Sequence[Problem], samples: Mapping[tuple[str, int], SampleRecord], n: int,
                 k: Sequence[int], excluded: Mapping[str, str]) -> list[dict[str, Any]]:
    """One results.jsonl row per problem: its samples' verdicts, c, and pass@k when it is complete."""
    rows = []
    for p in problems:
        if p.id in excluded:
            rows.append({"problem": p.id, "excluded": excluded[p.id]})
            continue
        got = [samples.get((p.id, i)) for i in range(n)]
        done = [s for s in got if s is not None]
        c = sum(s.passed for s in done)
        row: dict[str, Any] = {"problem": p.id, "n": len(done), "c": c,
                               "passed": [s.passed if s else None for s in got],
                               "status": [s.status if s else None for s in got]}
        if len(done) < n:
            row["incomplete"] = True
        else:
            row |= {f"pass@{kk}": pass_at_k(n, c, kk) for kk in k}
        rows.append(row)
    return rows


def summary_counts(rows: Sequence[Mapping[str, Any]], k: Sequence[int]) -> dict[str, Any]:
    """pass@k and counts from ``problem_rows``. Incomplete problems count nowhere (a rerun finishes them);
    excluded ones (their reference fails) count as failures in ``pass_at_k``, as EvalPlus counts them,
    and not at all in ``pass_at_k_scored``."""
    scored = [r for r in rows if "excluded" not in r and not r.get("incomplete")]
    excluded = sum(1 for r in rows if "excluded" in r)
    statuses = Counter(s for r in scored for s in r["status"])
    totals = {f"pass@{kk}": sum(r[f"pass@{kk}"] for r in scored) for kk in k}
    return {
        "pass_at_k": {key: total / (len(scored) + excluded) if scored or excluded else 0.0
                      for key, total in totals.items()},
        "pass_at_k_scored": {key: total / len(scored) if scored else 0.0 for key, total in totals.items()},
        "problems": len(scored),
        "samples": sum(r["n"] for r in scored),
        "passed": sum(r["c"] for r in scored),
        "statuses": dict(sorted(statuses.items())),
        "incomplete": [r["problem"] for r in rows if r.get("incomplete")],
    }


def render(summary: EvalSummary, console: Console) -> None:
    """The summary table, then the protocol and any problem left out."""
    table = Table(title=f"{summary.model} on {summary.bench}", title_justify="left")
    table.add_column("benchmark")
    table.add_column("problems", justify="right")
    table.add_column("n", justify="right")
    for key in summary.pass_at_k:
        table.add_column(key, justify="right", style="bold")
    table.add_column("samples passed", justify="right")
    table.add_column("statuses")
    table.add_row(summary.bench, str(summary.problems), str(summary.n),
                  *(f"{v * 100:.1f}%" for v in summary.pass_at_k.values()),
                  f"{summary.passed}/{summary.samples}",
                  ", ".join(f"{s} {c}" for s, c in summary.statuses.items()))
    console.print(table)
    if summary.excluded:
        scores = ", ".join(f"{key} {value * 100:.1f}% ({summary.pass_at_k_scored[key] * 100:.1f}% of the "
                           f"{summary.problems} scored; {len(summary.excluded)} excluded count as failed)"
                           for key, value in summary.pass_at_k.items())
        console.print(scores, highlight=False, soft_wrap=True)
    console.print(summary.protocol, highlight=False, soft_wrap=True)
    if summary.excluded:
        shown = "; ".join(f"{pid}: {why}" for pid, why in list(summary.excluded.items())[:5])
        console.print(f"[yellow]excluded {len(summary.excluded)} problem(s)[/] whose reference fails: {shown}",
                      highlight=False, soft_wrap=True)
    if summary.training_overlap:
        evaluated = summary.problems + len(summary.excluded) + len(summary.incomplete)
        console.print(overlap_warning(summary.training_overlap, evaluated, summary.training_data),
                      highlight=False, soft_wrap=True)
    console.print(f"{summary.generated} samples generated, {summary.reused} reused; results in {summary.out}",
                  highlight=False)
    if summary.incomplete:
        console.print(f"[yellow]incomplete:[/] {len(summary.incomplete)} problem(s) still miss samples after "
                      "transient model or sandbox faults (not scored); run the same command again to finish.",
                      highlight=False, soft_wrap=True)
