"""`codestill export RUN`: a batch run's accepted trajectories as SFT data (training/export.py).

    codestill export runs/r1                       # -> runs/r1/export/{sft.jsonl,removed.jsonl,export.json,README.md,lengths.png}
    codestill export runs/r1 --modular --out data/r1
    codestill export runs/demo --no-decontam       # data made from MBPP seeds on purpose
    codestill export runs/r1 --response-style explained+tests --all-passing
    codestill export runs/r1 --unverified --out runs/r1/baseline   # first answers, no gate: a baseline

Progress goes to stderr, the summary table (or ``--json``: the report) to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from codestill.errors import ExportError
from codestill.progress import RateColumn

if TYPE_CHECKING:
    from training.export import ExportReport

# training.export pulls in torch (through the training package) and datasketch: imported when the command
# runs, so other commands do not pay for it.
_BENCHMARKS = ("humaneval", "mbpp")  # training.export.BENCHMARKS


def _table(report: ExportReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("")
    table.add_column("count", justify="right")
    for verdict, n in report.by_verdict.items():
        table.add_row(f"read: {verdict}", str(n))
    if report.uncommitted_bytes:
        table.add_row("read: uncommitted bytes left out", str(report.uncommitted_bytes))
    for reason, n in report.removed.items():
        if n or reason in ("contaminated", "exact_duplicate", "near_duplicate"):
            table.add_row(f"removed: {reason}", str(n))
    table.add_row("[bold]kept trajectories[/]", f"[bold]{report.kept}[/]", end_section=True)
    for variant, n in report.by_variant.items():
        table.add_row(f"records: {variant}", str(n))
    table.add_row("[bold]records[/]", f"[bold]{report.records}[/]", end_section=True)
    if (e := report.evidence) is not None:
        table.add_row("code records explained", f"{e.explained} of {e.explained + e.unexplained}")
        if e.tests_passed is not None:
            table.add_row("tests passed per answer (median)", f"{e.tests_passed.median:g}")
        table.add_row("hidden tests: none / passed / failed",
                      " / ".join(str(e.hidden_tests.get(k, 0)) for k in ("none", "passed", "failed")))
        if e.mutation_score_median is not None:
            table.add_row("mutation score (median)", f"{e.mutation_score_median:.2f}")
        for category, n in e.categories.items():
            table.add_row(f"category: {category}", str(n))
    return table


def _benchmarks(decontam: bool, benchmark: list[str] | None) -> tuple[str, ...]:
    if not decontam:
        return ()
    chosen = tuple(dict.fromkeys(b.strip().lower() for b in benchmark)) if benchmark else _BENCHMARKS
    unknown = [b for b in chosen if b not in _BENCHMARKS]
    if unknown:
        raise ExportError(f"--benchmark {unknown[0]}: not a bundled benchmark; give one of {', '.join(_BENCHMARKS)}")
    return chosen


def export_command(
    run: Annotated[Path, typer.Argument(help="The batch run's folder (holds trajectories.jsonl).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default RUN/export); "
                                             "replaced whole if it holds an earlier export.")] = None,
    modular: Annotated[bool, typer.Option("--modular", help="Also a code record with the answer's modular form "
                                                            "(its function modules, then the solution).")] = False,
    decontam: Annotated[bool, typer.Option("--decontam/--no-decontam", help="Remove trajectories holding a "
                        "HumanEval / MBPP problem. Off for data made from benchmark seeds on purpose.")] = True,
    benchmark: Annotated[list[str] | None, typer.Option("--benchmark", help="Decontaminate against this one only "
                         "(humaneval, mbpp; repeatable). Default: both.")] = None,
    near_dedup: Annotated[bool, typer.Option("--near-dedup/--no-near-dedup", help="MinHash near-duplicate "
                          "removal of instructions (exact duplicates are always removed).")] = True,
    near_threshold: Annotated[float, typer.Option(min=0.05, max=0.98, help="Estimated Jaccard similarity (word "
                              "5-grams) from which two instructions are near duplicates.")] = 0.7,
    forward_plans: Annotated[bool, typer.Option("--forward-plans/--no-forward-plans",
                             help="Plan records from plans whose code was accepted.")] = True,
    backward_plans: Annotated[bool, typer.Option("--backward-plans/--no-backward-plans",
                              help="Plan records from plans written from the verified solution.")] = True,
    plan_conditioned: Annotated[bool, typer.Option("--plan-conditioned/--no-plan-conditioned",
                                help="Code records whose prompt asks to follow a verified plan (CodePLAN's "
                                     "plan sampling prompt).")] = True,
    response_style: Annotated[str, typer.Option("--response-style", help="code: the code block alone; explained: "
                              "the explanation, then the code; explained+tests: then the tests it passed.")
                              ] = "explained",
    all_passing: Annotated[bool, typer.Option("--all-passing", help="A code record for every accepted sample "
                           "with other code (solve.samples), not only the one picked at random.")] = False,
    unverified: Annotated[bool, typer.Option("--unverified", help="The direct-distillation baseline instead: every "
                          "trajectory's first answer, whatever its verdict, no gate passed (code:unverified). For "
                          "measuring what verification buys; never for a model you mean to use.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
) -> None:
    """Export a run's accepted trajectories as SFT data (code and plan tasks), decontaminated and deduplicated,
    with a data card."""
    from training.export import RESPONSE_STYLES, ExportOptions, export_run

    if response_style not in RESPONSE_STYLES:
        raise ExportError(f"--response-style {response_style}: not a style; give one of {', '.join(RESPONSE_STYLES)}")
    options = ExportOptions(modular=modular, decontaminate=_benchmarks(decontam, benchmark),  # type: ignore[arg-type]
                            near_dedup=near_dedup, near_threshold=near_threshold, forward_plans=forward_plans,
                            backward_plans=backward_plans, plan_conditioned=plan_conditioned,
                            response_style=response_style, all_passing=all_passing,  # type: ignore[arg-type]
                            unverified=unverified)
    err = Console(stderr=True, highlight=False)
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeRemainingColumn())
    bar = Progress(*columns, console=err, transient=True)
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if not tasks:  # started at the first stage: an input error ends in its one line, nothing else
            bar.start()
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        report = export_run(run, out, options, progress=progress)
    finally:
        if tasks:
            bar.stop()
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"run {report.run_id}: {report.records} records from {report.kept} of {report.trajectories} "
                  "trajectories")
    console.print(_table(report))
    console.print(f"-> {report.out_dir}")
