"""From SFT records to packed training rows: chat template, assistant-only labels, length filter, packing.

One ``Example`` is one record as token ids, with ``labels`` equal to the ids on assistant tokens and
-100 elsewhere. Examples longer than ``max_length`` are dropped, never truncated (a cut-off solution
teaches the model to stop mid-function). Packing puts several examples in one row of ``max_length``
(first-fit decreasing); the collator restarts ``position_ids`` at 0 for each example and passes no
``attention_mask``, which is how transformers' attention code (sdpa, eager, flex, flash-attention)
recognises packed rows and keeps each example's attention inside itself (flash-attention only in a batch
of one row: ``PackedCollator(flatten=True)`` makes one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from pydantic import BaseModel
from torch.utils.data import Dataset

from codestill.errors import TrainingError
from codestill.schemas import SFTRecord

IGNORE = -100  # the label value cross-entropy skips
TASKS: tuple[str, ...] = ("code", "plan")  # a task's id is its index; -1 marks padding
_TOKENIZE_CHUNK = 1024


@dataclass(frozen=True)
class Example:
    """One record as tokens; ``labels[i]`` is ``input_ids[i]`` on assistant tokens, ``IGNORE`` elsewhere.
    ``weight`` scales its tokens in its task's loss (from the record's tags, ``TrainConfig.tag_weights``)."""

    id: str
    task: int
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    weight: float = 1.0

    def __len__(self) -> int:
        return len(self.input_ids)


class LengthReport(BaseModel):
    """What the length filter kept and dropped; written to ``data_report.json``."""

    split: str
    max_length: int
    records: int
    kept: int
    dropped: int
    kept_by_task: dict[str, int]
    dropped_by_task: dict[str, int]
    longest_dropped: int | None
    dropped_ids: list[str]  # the first 50, so a reader can look at what was too long
    tokens: int
    trained_tokens: int


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def segments(record: SFTRecord, tokenizer: Any) -> list[tuple[str, bool]]:
    """The rendered conversation cut into ``(text, trained)`` pieces; ``trained`` on assistant answers.

    The prompt before an answer is the template's rendering *with* the generation prompt, so the model
    learns to answer exactly what it will be asked at inference time; the answer runs to the end of its
    turn, end-of-turn token included (the model must learn to stop).
    """
    messages = [{"role": m.role, "content": m.content} for m in record.messages]
    try:
        full = _render(tokenizer, messages, generation_prompt=False)
        cuts: list[tuple[int, int]] = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = _render(tokenizer, messages[:i], generation_prompt=True) if i else ""
            upto = _render(tokenizer, messages[: i + 1], generation_prompt=False)
            if not (full.startswith(upto) and upto.startswith(prompt)) or (cuts and len(prompt) < cuts[-1][1]):
                raise TrainingError(
                    f"record {record.id}: the student's chat template does not render the prompt as a prefix of "
                    "the conversation, so the assistant's tokens cannot be told apart; give a student with a "
                    "plain chat template (or set one on its tokenizer)")
            cuts.append((len(prompt), len(upto)))
    except TrainingError:
        raise
    except Exception as e:  # jinja errors: the template refuses this conversation's shape
        raise TrainingError(f"record {record.id}: the student's chat template cannot render it ({e}); "
                            "check the record's roles, or give a student whose template accepts them") from None
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in cuts:
        out += [(full[pos:start], False), (full[start:end], True)]
        pos = end
    out.append((full[pos:], False))
    return [(text, trained) for text, trained in out if text]


def tag_weight(record: SFTRecord, tag_weights: Mapping[str, float]) -> float:
    """A record's loss weight: the product of its tags' weights (a tag not named weighs 1)."""
    return math.prod(tag_weights.get(tag, 1.0) for tag in record.tags)


def tokenize_records(records: Sequence[SFTRecord], tokenizer: Any, tag_weights: Mapping[str, float] | None = None
                     ) -> list[Example]:
    """Every record as an ``Example``, weighted by ``tag_weights`` (see ``tag_weight``). Pieces are tokenised
    in batches (fast tokenizers run them in parallel)."""
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingError("the student's tokenizer has no chat template; give an instruct/chat model, or set "
                            "tokenizer.chat_template and save it with the model")
    pieces = [segments(r, tokenizer) for r in records]
    texts = [text for p in pieces for text, _ in p]
    ids: list[list[int]] = []
    for i in range(0, len(texts), _TOKENIZE_CHUNK):
        ids += tokenizer(texts[i:i + _TOKENIZE_CHUNK], add_special_tokens=False)["input_ids"]
    examples: list[Example] = []
    k = 0
    for record, p in zip(records, pieces, strict=True):
        input_ids: list[int] = []
        labels: list[int] = []
        for _, trained in p:
            input_ids += ids[k]
            labels += ids[k] if trained else [IGNORE] * len(ids[k])
            k += 1
        examples.append(Example(record.id, TASKS.index(record.task), tuple(input_ids), tuple(labels),
                                tag_weight(record, tag_weights or {})))
    return examples


def filter_by_length(examples: Sequence[Example], max_length: int, split: str = "train"
                     ) -> tuple[list[Example], LengthReport]:
    """Keep the examples of at most ``max_length`` tokens that have something to learn (an assistant token)."""
    kept = [e for e in examples if len(e) <= max_length and any(t != IGNORE for t in e.labels[1:])]
    kept_ids = {id(e) for e in kept}
    dropped = [e for e in examples if id(e) not in kept_ids]
    report = LengthReport(
        split=split, max_length=max_length, records=len(examples), kept=len(kept), dropped=len(dropped),
        kept_by_task={t: sum(e.task == i for e in kept) for i, t in enumerate(TASKS)},
        dropped_by_task={t: sum(e.task == i for e in dropped) for i, t in enumerate(TASKS)},
        longest_dropped=max((len(e) for e in dropped), default=None),
        dropped_ids=[e.id for e in dropped[:50]],
        tokens=sum(len(e) for e in kept),
        trained_tokens=sum(t != IGNORE for e in kept for t in e.labels[1:]),
    )
    return kept, report


def first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Greedy first-fit decreasing: indices of ``lengths`` grouped into rows of at most ``capacity``.

    A max-segment tree over the rows' free space finds the leftmost row with room in O(log n), so a
    few hundred thousand examples pack in seconds rather than the hours a linear scan would take.
    """
    if any(n > capacity for n in lengths):
        raise ValueError("every length must fit in one row; filter by length first")
    size = 1
    while size < max(len(lengths), 1):
        size *= 2
    free = [capacity] * (2 * size)  # leaves: rows' free space (unopened rows are empty); inner: max of children
    rows: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        node = 1
        while node < size:
            node = 2 * node if free[2 * node] >= lengths[i] else 2 * node + 1
        row = node - size
        if row == len(rows):  # the leftmost row with room is a fresh one
            rows.append([])
        rows[row].append(i)
        free[node] -= lengths[i]
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return rows


class PackedDataset(Dataset):
    """Rows of examples; with ``packing`` several examples share a row, without it each has its own."""

    def __init__(self, examples: Sequence[Example], max_length: int, packing: bool = True) -> None:
        self.examples = list(examples)
        # Rows carry per-token "weights" only when some example is weighted: unweighted data keeps its shape.
        self.weighted = any(e.weight != 1.0 for e in self.examples)
        lengths = [len(e) for e in self.examples]
        self.rows = first_fit(lengths, max_length) if packing else [[i] for i in range(len(lengths))]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int) -> dict[str, list[Any]]:
        row: dict[str, list[Any]] = {"input_ids": [], "labels": [], "position_ids": [], "task_ids": []}
        if self.weighted:
            row["weights"] = []
        for i in self.rows[k]:
            e = self.examples[i]
            row["input_ids"] += e.input_ids
            # The first token of an example is never a target: its predecessor belongs to another example.
            row["labels"] += [IGNORE, *e.labels[1:]]
            row["position_ids"] += range(len(e))
            row["task_ids"] += [e.task] * len(e)
            if self.weighted:
                row["weights"] += [e.weight] * len(e)
        return row


@dataclass(frozen=True)
class PackedCollator:
    """Rows -> tensors, padded to the longest row (rounded up to ``pad_to_multiple_of``).

    The padding is one more "example" whose positions restart at 0, labels are ``IGNORE`` and task is -1,
    so it neither sees nor is seen by the real tokens (and weighs 0 where rows carry ``weights``). There is
    deliberately no ``attention_mask``: its absence is what makes transformers read sample boundaries from
    ``position_ids``.

    ``flatten`` puts all rows of the micro-batch back to back in a single row (padding only at its end). It
    is what flash-attention needs: transformers reads packed boundaries for its varlen kernel only from a
    batch of one row, and would let every sample of a wider batch attend to the samples before it in its
    row. sdpa / eager / flex read the boundaries of every row, and keep rows apart (their attention cost
    grows with the row length squared, so they are not flattened).
    """

    pad_token_id: int
    pad_to_multiple_of: int = 8
    flatten: bool = False

    def __call__(self, rows: Sequence[dict[str, list[Any]]]) -> dict[str, torch.Tensor]:
        if self.flatten:
            rows = [{k: [x for r in rows for x in r[k]] for k in rows[0]}]
        longest = max(len(r["input_ids"]) for r in rows)
        width = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, list[list[Any]]] = {"input_ids": [], "labels": [], "position_ids": [], "task_ids": []}
        weighted = "weights" in rows[0]
        if weighted:
            batch["weights"] = []
        for r in rows:
            pad = width - len(r["input_ids"])
            batch["input_ids"].append(r["input_ids"] + [self.pad_token_id] * pad)
            batch["labels"].append(r["labels"] + [IGNORE] * pad)
            batch["position_ids"].append(r["position_ids"] + list(range(pad)))
            batch["task_ids"].append(r["task_ids"] + [-1] * pad)
            if weighted:
                batch["weights"].append(r["weights"] + [0.0] * pad)
        return {k: torch.tensor(v, dtype=torch.float32 if k == "weights" else torch.long) for k, v in batch.items()}

    def spans(self, rows: Sequence[dict[str, list[int]]]) -> list[tuple[int, int, int]]:
        """Where each sample of ``rows`` lands in the collated batch: ``(batch row, offset, length)``."""
        out: list[tuple[int, int, int]] = []
        flat_offset = 0
        for k, r in enumerate(rows):
            starts = [i for i, p in enumerate(r["position_ids"]) if p == 0] + [len(r["position_ids"])]
            for start, end in pairwise(starts):
                out.append((0, flat_offset + start, end - start) if self.flatten else (k, start, end - start))
            flat_offset += len(r["position_ids"])
        return out
