"""The export's data card: ``README.md`` (counts, sources, models, filters, how to load it) and
``lengths.png`` (a histogram of record lengths per task).

The card opens with Hugging Face dataset-card metadata naming ``sft.jsonl`` as the train split, so
``datasets.load_dataset(EXPORT_DIR)`` reads the records and not ``removed.jsonl`` beside them. Lengths are
in characters of the whole conversation: the export has no tokenizer, and the trainer's own length filter
(``--max-length``, in the student's tokens) reports what it drops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codestill.schemas import SFTRecord

if TYPE_CHECKING:
    from training.export import ExportReport

SFT_FILE = "sft.jsonl"
REMOVED_FILE = "removed.jsonl"
REPORT_FILE = "export.json"
CARD_FILE = "README.md"
LENGTHS_FILE = "lengths.png"


def record_length(record: SFTRecord) -> int:
    """Characters of a record's conversation: what the length histogram counts."""
    return sum(len(m.content) for m in record.messages)


def plot_lengths(records: Sequence[SFTRecord], path: Path) -> None:
    """A histogram of record lengths, one series per task, on a shared set of bins (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the export runs on servers and in CI
    import matplotlib.pyplot as plt

    by_task: dict[str, list[int]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(record_length(r))
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        everything = [n for lengths in by_task.values() for n in lengths]
        bins = min(40, max(5, len(set(everything))))
        ax.hist([by_task[t] for t in sorted(by_task)], bins=bins, label=sorted(by_task), stacked=True)
        ax.set_xlabel("characters per record (prompt + answer)")
        ax.set_ylabel("records")
        ax.set_title(f"Record lengths ({len(records)} records)")
        ax.legend(title="task")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _table(title: str, counts: Mapping[str, int], total_label: str = "total") -> list[str]:
    rows = [f"| {title} | count |", "|---|---:|"]
    rows += [f"| {key} | {n} |" for key, n in counts.items()]
    if len(counts) > 1:
        rows.append(f"| **{total_label}** | **{sum(counts.values())}** |")
    return [*rows, ""]


def _evidence(report: ExportReport) -> list[str]:
    e = report.evidence
    if e is None:
        return []
    lines = ["## Evidence", "",
             "Every record's `provenance.evidence` names the sandbox runs that passed its code, the tests passed of "
             "those run, the mutation score of its tests, whether hidden tests (never shown to the agents) ran and "
             "passed, the teacher model of each role and the codestill release.", "",
             f"- code records with an explanation: {e.explained} of {e.explained + e.unexplained}"
             + (" (the others are the code alone: no explanation that could stand in a sample)" if e.unexplained
                else "")]
    if e.tests_passed is not None:
        lines.append(f"- tests passed per answer: min {e.tests_passed.min}, median {e.tests_passed.median:g}, "
                     f"max {e.tests_passed.max}; judged by stdin/stdout cases: {e.io_tests}")
    if e.mutation_score_median is not None:
        lines.append(f"- mutation score of the tests: {e.mutation_judged} judged, min {e.mutation_score_min:.2f}, "
                     f"median {e.mutation_score_median:.2f}")
    lines.append("- hidden tests: " + ", ".join(f"{k} {n}" for k, n in e.hidden_tests.items()))
    lines.append("- categories: " + ", ".join(f"{k} {n}" for k, n in e.categories.items()))
    lines.append("- codestill releases: " + ", ".join(f"`{k}` {n}" for k, n in e.versions.items()))
    lines += ["", "| role | teacher | records |", "|---|---|---:|"]
    lines += [f"| {role} | `{spec}` | {n} |" for role, specs in e.teachers.items() for spec, n in specs.items()]
    return [*lines, ""]


def render_card(report: ExportReport) -> str:
    """The README.md text of an export, from its report alone (everything it says is in export.json too)."""
    o = report.options
    decontam = ", ".join(o.decontaminate) if o.decontaminate else "off"
    near = f"MinHash LSH, word 5-grams, Jaccard >= {o.near_threshold}" if o.near_dedup else "off"
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {SFT_FILE}",
        "tags:",
        "- code",
        "- codestill",
        "---",
        "",
        f"# codestill SFT export of run `{report.run_id}`",
        "",
        f"{report.records} chat records (`messages`) from {report.kept} of the run's {report.trajectories} "
        + ("trajectories: **UNVERIFIED**, the teacher's first answer of every trajectory whatever its verdict, "
           "no test or critic in between (`--unverified`, the direct-distillation baseline: for measuring what "
           "verification buys, not for training a model you mean to use), "
           if o.unverified else "trajectories: only accepted trajectories, ")
        + "after decontamination and duplicate removal. Written by "
        "`codestill export`; `export.json` holds every number below, `removed.jsonl` every trajectory left "
        "out and why.",
        "",
        "## Records",
        "",
        *_table("variant (`tags`)", report.by_variant),
        *_table("task", report.by_task),
        "- `code:final`: the instruction -> the verified solution, in the response style "
        f"`{o.response_style}` (code: the code block alone; explained: the explanation of the approach, then the "
        "code; explained+tests: then the tests it passed); `code:modular`: the same prompt -> the function modules "
        "the solution is built from, then the solution.",
        "- `code:plan-conditioned`: the instruction and \"Follow this plan:\" a verified plan -> the code that plan "
        "led to: the prompt CodePLAN's plan sampling asks a student at evaluation.",
        "- `plan:forward`: a plan written before the code, whose code passed its tests and was accepted; "
        "`plan:backward`: a plan written afterwards from the verified solution (CodePLAN). A plan's text is "
        "exported once per trajectory.",
        "",
        *_evidence(report),
        "## Sources and models (kept trajectories)",
        "",
        *_table("source", report.sources),
        *_table("model", {f"`{m}`" if m else "(not recorded)": n for m, n in report.models.items()}),
        "## Filters",
        "",
        f"- verdict: accepted only (read {report.trajectories} trajectories: "
        + ", ".join(f"{v} {n}" for v, n in report.by_verdict.items()) + ")",
        f"- benchmark decontamination (`tools.decontam`, instruction and solution): {decontam}",
        f"- duplicate instructions (`tools.dedup`): exact (case and whitespace aside); near: {near}",
    ]
    if report.uncommitted_bytes:
        lines.append(f"- bytes past the ledger's last commit, left out: {report.uncommitted_bytes}")
    lines += ["", *_table("removed because", report.removed, "removed"),
              "## Lengths", "",
              f"Characters per record: min {report.lengths.min}, median {report.lengths.median}, "
              f"max {report.lengths.max}.", "", f"![record lengths]({LENGTHS_FILE})", "",
              "## Loading", "", "```python",
              "from datasets import load_dataset",
              f'ds = load_dataset("json", data_files="{SFT_FILE}", split="train")',
              "# TRL: SFTTrainer(model=..., train_dataset=ds, processing_class=tokenizer) reads `messages`.",
              "```", "",
              f"codestill's own trainer: `codestill train --data {SFT_FILE} --student MODEL --out DIR`.",
              "Every record's `provenance` names its task, trajectory, source, lineage, model and run.", ""]
    return "\n".join(lines)
