"""Training students on codestill SFT records (see ``training/README.md``).

    from training import TrainConfig, train
    result = train(TrainConfig(data=Path("sft.jsonl"), student="Qwen/Qwen2.5-Coder-0.5B-Instruct", out=Path("run")))

The data helpers (tokenise with the chat template, assistant-only labels, length filter, packing, the
collator), the per-task loss and the ``CodestillTrainer`` are public too, for benchmarks and for anyone building their own loop.
"""

from typing import TYPE_CHECKING

from training._data import (
    IGNORE,
    TASKS,
    Example,
    LengthReport,
    PackedCollator,
    PackedDataset,
    filter_by_length,
    first_fit,
    tokenize_records,
)
from training._loss import task_ce_sums, task_token_counts, task_weights, weighted_loss
from training.trainer import TrainConfig, TrainResult, config_from, train

if TYPE_CHECKING:  # what __getattr__ loads on first use, for type checkers
    from training._trainer import CodestillTrainer


def __getattr__(name: str) -> object:
    # The Trainer subclass pulls in transformers' Trainer (seconds to import): only when asked for.
    if name == "CodestillTrainer":
        from training._trainer import CodestillTrainer

        return CodestillTrainer
    raise AttributeError(f"module 'training' has no attribute {name!r}")


__all__ = [
    "IGNORE",
    "TASKS",
    "CodestillTrainer",
    "Example",
    "LengthReport",
    "PackedCollator",
    "PackedDataset",
    "TrainConfig",
    "TrainResult",
    "config_from",
    "filter_by_length",
    "first_fit",
    "task_ce_sums",
    "task_token_counts",
    "task_weights",
    "tokenize_records",
    "train",
    "weighted_loss",
]
