"""The SFT export: a batch run's accepted trajectories -> chat records for the code and plan tasks.

    from training.export import ExportOptions, export_run
    report = export_run(Path("runs/r1"), options=ExportOptions(decontaminate=("humaneval",)))

``export_run`` reads ``RUN/trajectories.jsonl``, keeps accepted trajectories, removes benchmark-contaminated
ones and duplicate instructions (``training._export_filter``), turns each kept one into tagged records
(``training._export_records``) and writes one folder (default ``RUN/export``)::

    sft.jsonl       SFTRecord per line: `messages`, task code | plan, tags, provenance
    removed.jsonl   every trajectory left out, with the reason (Removal)
    export.json     the ExportReport: counts read, removed by reason, records by task / variant / source
    README.md       the data card;   lengths.png   the length histogram

The folder is built under a temporary name beside it and renamed into place, so a failed export leaves
the previous one as it was. The records load with ``datasets.load_dataset("json", ...)``, TRL's
``SFTTrainer`` and ``codestill train``.
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from codestill.errors import ExportError
from codestill.records import write_json, write_jsonl
from codestill.run import RunDir
from codestill.schemas import SFT_VARIANTS, SFTRecord, Trajectory
from training._export_card import (
    CARD_FILE,
    LENGTHS_FILE,
    REMOVED_FILE,
    REPORT_FILE,
    SFT_FILE,
    plot_lengths,
    record_length,
    render_card,
)
from training._export_evidence import RESPONSE_STYLES, ResponseStyle
from training._export_filter import (
    BENCHMARKS,
    REMOVAL_REASONS,
    Benchmark,
    ProgressFn,
    Removal,
    decontaminate,
    deduplicate,
    usable,
)
from training._export_records import RecordOptions, public_model, records_for
from training._export_unverified import first_answers, unverified_record

__all__ = ["BENCHMARKS", "RESPONSE_STYLES", "EvidenceSummary", "ExportOptions", "ExportReport", "LengthStats", "Removal",
           "ResponseStyle", "default_out", "export_run"]

DEFAULT_OUT = "export"


class ExportOptions(BaseModel):
    """What goes into an export. The defaults are the issue's: both benchmarks, both dedup rules, no modular form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modular: bool = Field(default=False, description="Also a code:modular record per decomposed solution.")
    forward_plans: bool = Field(default=True, description="plan:forward records (plans whose code was accepted).")
    backward_plans: bool = Field(default=True, description="plan:backward records (plans written from the solution).")
    plan_conditioned: bool = Field(default=True, description="code:plan-conditioned records: the code prompt with "
                                   "'Follow this plan:' and a verified plan -> the code it led to.")
    response_style: ResponseStyle = Field(default="explained", description="code: the code block alone; explained: the "
                                          "explanation, then the code; explained+tests: then the tests it passed.")
    all_passing: bool = Field(default=False, description="A code:final record for every accepted sample with other code "
                              "(solve.samples), not only the one picked.")
    unverified: bool = Field(default=False, description="The direct-distillation baseline instead: one code:unverified "
                             "record per trajectory, whatever its verdict, with its first attempt (no gate; no "
                             "evidence). For measuring what verification buys, not for a student you mean to use.")
    decontaminate: tuple[Benchmark, ...] = Field(
        default=BENCHMARKS, description="Benchmarks to decontaminate against; () turns it off (data made from MBPP seeds).")
    near_dedup: bool = Field(default=True, description="MinHash near-duplicate removal of instructions (exact is always on).")
    # Above 0.98 datasketch's LSH cannot be banded (fewer than 2 bands of 128 permutations).
    near_threshold: float = Field(default=0.7, ge=0.05, le=0.98,
                                  description="Estimated Jaccard similarity of word 5-grams from which two "
                                              "instructions are near duplicates.")


class LengthStats(BaseModel):
    """Characters per record (prompt + answer)."""

    min: int
    median: float
    max: int


class EvidenceSummary(BaseModel):
    """What the exported answers' verification rests on, over the code:final records."""

    explained: int = Field(description="code records whose answer has an explanation.")
    unexplained: int = Field(description="code records exported as code alone: no explanation could stand in a "
                             "sample (none, too short, or it named the memory).")
    tests_passed: LengthStats | None = Field(description="Tests each answer passed in the sandbox.")
    io_tests: int = Field(description="code:final records judged by stdin/stdout cases.")
    mutation_judged: int = Field(description="code:final records whose tests were judged by mutants.")
    mutation_score_min: float | None = None
    mutation_score_median: float | None = None
    hidden_tests: dict[str, int] = Field(description="code:final records by hidden tests: none, passed, failed.")
    teachers: dict[str, dict[str, int]] = Field(description="Per role: the model specs and their record counts.")
    versions: dict[str, int] = Field(description="codestill releases that produced the trajectories.")
    categories: dict[str, int] = Field(description="Task categories of the kept trajectories.")


class ExportReport(BaseModel):
    """What an export read, removed and wrote; saved as ``export.json``, shown by the CLI, rendered in the card."""

    run_id: str
    run_dir: str
    out_dir: str
    options: ExportOptions
    trajectories: int = Field(description="Trajectories read (cut-off lines not counted).")
    by_verdict: dict[str, int]
    uncommitted_bytes: int = Field(default=0, description="Bytes of trajectories.jsonl past the ledger's last commit, left out "
                                   "(a running batch's next input, or the tail of one that died).")
    kept: int = Field(description="Trajectories exported.")
    removed: dict[str, int] = Field(description="Trajectories left out, by reason (see removed.jsonl).")
    records: int
    by_task: dict[str, int]
    by_variant: dict[str, int]
    sources: dict[str, int]
    models: dict[str, int]
    lengths: LengthStats
    evidence: EvidenceSummary | None = None


def default_out(run_dir: Path) -> Path:
    return run_dir / DEFAULT_OUT


def _counts(values: Iterable[str], order: Iterable[str] = ()) -> dict[str, int]:
    """Counts in the given order first (zeros kept), then the rest by count, most first."""
    counter = Counter(values)
    fixed = list(order)
    rest = sorted((k for k in counter if k not in fixed), key=lambda k: (-counter[k], k))
    return {k: counter[k] for k in [*fixed, *rest]}


def _stats(values: list[int]) -> LengthStats:
    return LengthStats(min=min(values), median=statistics.median(values), max=max(values))


def _evidence(records: list[SFTRecord], kept: list[Trajectory], unexplained: int) -> EvidenceSummary:
    finals = [r.provenance.evidence for r in records if r.tags[0] == "code:final" and r.provenance.evidence]
    code_records = sum(r.task == "code" and r.tags[0] != "code:modular" for r in records)
    scores = [e.mutation_score for e in finals if e.mutation_score is not None]
    teachers: dict[str, Counter[str]] = {}
    for e in finals:
        for role, spec in e.teachers.items():
            teachers.setdefault(role, Counter())[spec] += 1
    return EvidenceSummary(
        explained=code_records - unexplained, unexplained=unexplained,
        tests_passed=_stats([e.tests_passed for e in finals]) if finals else None,
        io_tests=sum(e.test_kind == "io" for e in finals), mutation_judged=len(scores),
        mutation_score_min=min(scores) if scores else None,
        mutation_score_median=statistics.median(scores) if scores else None,
        hidden_tests=_counts((e.hidden_tests for e in finals), ("none", "passed", "failed")),
        teachers={role: dict(c.most_common()) for role, c in teachers.items()},
        versions=_counts(t.codestill_version or "(not recorded)" for t in kept),
        categories=_counts(t.task.origin.category if t.task.origin and t.task.origin.category else "(not recorded)"
                           for t in kept))


def _check_out(out: Path) -> None:
    """Refuse an output that an export would clobber without owning it: a file, or a folder with other things."""
    if out.is_file() or (out.exists() and not out.is_dir()):
        raise ExportError(f"--out {out}: is a file; give a folder (it is created, or replaced if it is an export)")
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT_FILE).is_file():
        raise ExportError(f"--out {out}: holds files that are not a codestill export (no {REPORT_FILE}); "
                          "give a new or empty folder")


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; the previous export is removed only once the new one is there."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write(tmp: Path, records: list[SFTRecord], removals: list[Removal], report: ExportReport,
           progress: ProgressFn | None) -> None:
    if progress is not None:
        progress("writing", 0, 1)
    tmp.mkdir()
    write_jsonl(tmp / SFT_FILE, records)
    write_jsonl(tmp / REMOVED_FILE, removals)
    write_json(tmp / REPORT_FILE, report)
    plot_lengths(records, tmp / LENGTHS_FILE)
    (tmp / CARD_FILE).write_text(render_card(report))
    if progress is not None:
        progress("writing", 1, 1)


def export_run(run_dir: Path, out_dir: Path | None = None, options: ExportOptions | None = None,
               progress: ProgressFn | None = None) -> ExportReport:
    """Export ``run_dir``'s accepted trajectories to ``out_dir`` (default ``run_dir/export``); see the module
    docstring. ``progress(stage, done, total)`` is called as the slow stages advance. Raises a
    ``CodestillError`` (one line: cause and fix) for a missing run, a malformed line, nothing to export,
    or an output folder that is not an earlier export."""
    options = options or ExportOptions()
    out = (out_dir or default_out(run_dir)).expanduser().absolute()  # absolute: "." has no name to rename
    _check_out(out)
    run = RunDir(run_dir).trajectories()
    by_verdict = _counts((t.verdict for t in run.trajectories), ("accepted", "rejected", "failed"))
    if not by_verdict["accepted"] and not options.unverified:
        raise ExportError(f"{run_dir}: none of its {len(run.trajectories)} trajectories was accepted "
                          f"(rejected {by_verdict['rejected']}, failed {by_verdict['failed']}); there is nothing "
                          "to export: solve more tasks, or look at why with codestill traces")
    kept, removals = first_answers(run.trajectories) if options.unverified else usable(run.trajectories)
    kept, removed = decontaminate(kept, options.decontaminate, progress)
    removals += removed
    kept, removed = deduplicate(kept, near=options.near_dedup, threshold=options.near_threshold, progress=progress)
    removals += removed
    removed_counts = _counts((r.reason for r in removals), REMOVAL_REASONS)
    if not kept:
        why = ", ".join(f"{k} {n}" for k, n in removed_counts.items() if n)
        raise ExportError(f"{run_dir}: every accepted trajectory was removed ({why}); nothing to export. Data "
                          "made from benchmark seeds needs --no-decontam (or --benchmark naming only the other benchmark)")
    chosen = RecordOptions(modular=options.modular, forward_plans=options.forward_plans,
                           backward_plans=options.backward_plans, plan_conditioned=options.plan_conditioned,
                           response_style=options.response_style, all_passing=options.all_passing)
    records, unexplained = [], 0
    for t in kept:
        if options.unverified:
            record, missing = unverified_record(t, run.run_id, options.response_style)
            made = [record]
        else:
            made, missing = records_for(t, run.run_id, chosen)
        records += made
        unexplained += missing
    lengths = [record_length(r) for r in records]
    report = ExportReport(
        run_id=run.run_id, run_dir=str(run_dir), out_dir=str(out), options=options,
        trajectories=len(run.trajectories), by_verdict=by_verdict, uncommitted_bytes=run.uncommitted_bytes,
        kept=len(kept), removed=removed_counts, records=len(records),
        by_task=_counts((r.task for r in records), ("code", "plan")),
        by_variant=_counts((r.tags[0] for r in records), ("code:unverified",) if options.unverified
                           else [v for v in SFT_VARIANTS if v != "code:unverified"]),
        sources=_counts(t.task.source for t in kept), models=_counts(public_model(t.model) for t in kept),
        lengths=_stats(lengths), evidence=_evidence(records, kept, unexplained))
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        _write(tmp, records, removals, report, progress)
        _publish(tmp, out)
    except OSError as e:
        raise ExportError(f"{out}: cannot write the export there ({e.strerror or e}); give a writable --out"
                          ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report
