"""What a run shows and leaves behind as it goes: a rich progress bar, ``metrics.jsonl``, ``loss_curve.png``.

Only the main process writes or draws; the callbacks are no-ops on the other ranks of a multi-GPU run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

METRICS_FILE = "metrics.jsonl"
LOSS_CURVE_FILE = "loss_curve.png"


def _step(line: str) -> float:
    """The step of a metrics line; a line a kill cut short (or a blank one) sorts after every step."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")


class MetricsFile(TrainerCallback):
    """Streams every log line (train loss per logging step, eval loss, final summary) to ``metrics.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        # On resume, lines a crashed run logged after its last checkpoint are logged again: drop the stale ones.
        if state.is_world_process_zero and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= state.global_step]
            self.path.write_text("".join(f"{line}\n" for line in kept))

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


class RichProgress(TrainerCallback):
    """Optimizer steps done, with the last logged loss, rate and ETA (replaces the Trainer's tqdm bar)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task: Any = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("steps"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=self.console)
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.progress is not None and logs:
            shown = [f"{k} {logs[k]:.4f}" for k in ("loss", "eval_loss") if k in logs]
            if shown:
                self.progress.update(self.task, description="train " + " ".join(shown))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def plot_loss_curve(metrics: Path, out: Path) -> bool:
    """Train (and per-task) loss per logging step and eval loss, as a PNG; False when nothing was logged."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()] if metrics.exists() else []
    series = {k: [(r["step"], r[k]) for r in rows if k in r]
              for k in ("loss", "loss_code", "loss_plan", "eval_loss")}
    if not any(series.values()):
        return False
    # A Figure with its own Agg canvas, not pyplot: no global backend switch, no display needed.
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = {"loss": "-", "loss_code": ":", "loss_plan": ":", "eval_loss": "o-"}
    for name, points in series.items():
        if points:
            ax.plot(*zip(*points, strict=True), styles[name], label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per target token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    fig.savefig(tmp, format="png")
    os.replace(tmp, out)  # a reader never sees half an image
    return True
