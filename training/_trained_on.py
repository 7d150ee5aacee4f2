"""What a trained model was trained on, kept beside it so an evaluation can tell when it scores a
model on problems it has seen.

``codestill train`` writes ``training_data.json`` into its run directory and into the final ``model/``
directory (so the record travels with a copied model); ``codestill eval`` reads it from the model
directory or the run directory above it and warns, naming the problems, when a benchmark problem is
among the training prompts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codestill.schemas import SFTRecord

TRAINING_DATA_FILE = "training_data.json"


class TrainedOn(BaseModel):
    """The SFT data a model was trained on: where it was, its digest, and what its prompts asked."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="The SFT records file, as given to the trainer (absolute path).")
    sha256: str
    records: int
    task_ids: list[str] = Field(description="Distinct provenance task ids, sorted.")
    prompts: list[str] = Field(description="Distinct first user messages, in file order.")


def trained_on(data: Path, records: Iterable[SFTRecord]) -> TrainedOn:
    records = list(records)
    prompts = dict.fromkeys(next((m.content for m in r.messages if m.role == "user"), "") for r in records)
    return TrainedOn(data=str(data), sha256=hashlib.sha256(data.read_bytes()).hexdigest(), records=len(records),
                     task_ids=sorted({r.provenance.task_id for r in records}), prompts=[p for p in prompts if p])


def write_trained_on(directory: Path, value: TrainedOn) -> None:
    """Whole or not at all (a temporary file renamed over the target)."""
    tmp = directory / (TRAINING_DATA_FILE + ".tmp")
    tmp.write_text(value.model_dump_json(indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, directory / TRAINING_DATA_FILE)


def read_trained_on(model_dir: Path) -> tuple[TrainedOn, Path] | None:
    """The record of ``model_dir`` (a final model or a checkpoint) or of the run directory above it, with
    the file it came from; None when neither has one or it cannot be read (a model from elsewhere)."""
    for where in (model_dir, model_dir.parent):
        path = where / TRAINING_DATA_FILE
        if path.is_file():
            try:
                return TrainedOn.model_validate(json.loads(path.read_text(encoding="utf-8"))), path
            except (OSError, ValueError, ValidationError):
                return None
    return None
