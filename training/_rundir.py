"""The output directory of a run: which checkpoint to resume from, starting over, the final model.

    DIR/config.json         the TrainConfig (auto values resolved)      DIR/checkpoint-N/   Trainer checkpoints
    DIR/data_report.json    what the length filter kept and dropped     DIR/metrics.jsonl   log lines, streamed
    DIR/train_result.json   the TrainResult                             DIR/loss_curve.png  at the end
    DIR/training_data.json  what it was trained on (also in DIR/model/), for codestill eval's overlap warning
    DIR/model/              final model + tokenizer, written only once training ended (tmp dir, then rename)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from codestill.errors import TrainingError

CONFIG_FILE = "config.json"
MODEL_DIR = "model"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Files a run owns; starting over removes exactly these (and checkpoints), nothing else in DIR.
OWNED = ("config.json", "data_report.json", "metrics.jsonl", "loss_curve.png", "train_result.json",
         "training_data.json", MODEL_DIR, ".model.tmp")


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def complete(checkpoint: Path) -> bool:
    """The Trainer writes ``trainer_state.json`` last: without it a crash hit in the middle of a save."""
    return (checkpoint / "trainer_state.json").exists()


def last_checkpoint(out: Path) -> Path | None:
    done = [p for _, p in _checkpoints(out) if complete(p)]
    return done[-1] if done else None


def recorded_config(out: Path) -> dict[str, Any] | None:
    """The config a run in ``out`` was recorded with; None when there is none (or it is not a dict)."""
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads((out / CONFIG_FILE).read_text())
        return recorded if isinstance(recorded, dict) else None
    return None


def check_out_dir(out: Path, config: dict[str, Any], identity: Iterable[str], *, resume: bool,
                  defaults: Mapping[str, Any] | None = None) -> None:
    """Refuse an ``out`` this run must not write into, before anything is written.

    ``out`` may be new, empty, or a codestill training run (its ``config.json`` holds every ``identity`` field).
    Anything else (a file, a model directory, a batch run directory with its own ``config.json``) is
    refused even with ``resume=False``: starting over deletes files by name, and they would not be ours.
    Resuming a run recorded with other ``identity`` values would mix two runs in one directory: refused too.
    ``defaults`` are the values of identity settings newer than some recorded runs: a run recorded without
    one of them is read as having its default.
    """
    identity = tuple(identity)
    defaults = defaults or {}
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out}: it is a file, not a directory; give a new or empty directory")
    # Dot files alone count as empty: the temporary files of this run's own atomic writes are dot files, and
    # under a launcher the main process may be writing them while another process runs this check.
    if not out.is_dir() or all(p.name.startswith(".") for p in out.iterdir()):
        return
    # config.json is written atomically, so missing or unreadable means the directory is not a run of ours.
    recorded: Any = recorded_config(out)
    if recorded is not None:
        recorded = {**defaults, **recorded}
    if not (isinstance(recorded, dict) and all(name in recorded for name in identity)):
        raise TrainingError(f"--out {out}: the directory holds files that are not a codestill training run; "
                            "give a new or empty directory (for example a subdirectory of it)")
    if not resume:
        return
    differ = [name for name in identity if recorded[name] != config.get(name)]
    if differ:
        theirs = ", ".join(f"{name}={recorded[name]!r}" for name in differ)
        ours = ", ".join(f"{name}={config.get(name)!r}" for name in differ)
        raise TrainingError(f"--out {out} holds a run with {theirs}, this one has {ours}; "
                            "give another --out, or pass --no-resume to start over in it")


def start_over(out: Path) -> None:
    """Remove what an earlier run left in ``out`` (its checkpoints and owned files), nothing else."""
    for _, p in _checkpoints(out):
        shutil.rmtree(p)
    for name in OWNED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def drop_incomplete_checkpoints(out: Path) -> None:
    for _, p in _checkpoints(out):
        if not complete(p):
            shutil.rmtree(p)


def publish_model(tmp: Path, out: Path) -> Path:
    """Move a fully written model directory into place as ``out/model``."""
    final = out / MODEL_DIR
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
