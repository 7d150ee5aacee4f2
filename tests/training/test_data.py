"""Tokenisation with the chat template, assistant-only labels, the length filter, packing and the collator."""

from __future__ import annotations

import random

from tests.training.conftest import sft_record
from training import (
    IGNORE,
    TASKS,
    PackedCollator,
    PackedDataset,
    filter_by_length,
    first_fit,
    tokenize_records,
)


def test_labels_cover_the_assistant_answer_and_nothing_of_the_prompt(tokenizer):
    record = sft_record("r1", "code", "Write a function to add two numbers.", "def add(a, b):\n    return a + b\n")
    [example] = tokenize_records([record], tokenizer)
    text = tokenizer.apply_chat_template([m.model_dump() for m in record.messages], tokenize=False)
    assert tokenizer.decode(example.input_ids) == text
    trained = [i for i, label in enumerate(example.labels) if label != IGNORE]
    assert trained and trained == list(range(trained[0], len(example)))  # one span, running to the end
    assert tokenizer.decode(example.input_ids[: trained[0]]) == (
        "<|user|>Write a function to add two numbers.</s><|assistant|>")
    assert tokenizer.decode([example.labels[i] for i in trained]) == "def add(a, b):\n    return a + b\n</s>"
    assert TASKS[example.task] == "code"


def test_length_filter_drops_long_records_whole_and_reports_them(tokenizer):
    records = [sft_record("short-code", "code", "Add.", "def f(): pass"),
               sft_record("short-plan", "plan", "Plan.", "1. Add."),
               sft_record("long-code", "code", "Add.", "def add(a, b):\n    return a + b\n" * 40)]
    examples = tokenize_records(records, tokenizer)
    kept, report = filter_by_length(examples, max_length=64)
    assert [e.id for e in kept] == ["short-code", "short-plan"]
    assert all(len(e) == len(e.labels) <= 64 for e in kept)
    assert (report.kept, report.dropped, report.dropped_ids) == (2, 1, ["long-code"])
    assert report.kept_by_task == {"code": 1, "plan": 1} and report.dropped_by_task == {"code": 1, "plan": 0}
    assert report.longest_dropped == len(examples[2]) > 64
    assert report.tokens == len(examples[0]) + len(examples[1])


def test_first_fit_places_every_example_once_in_few_rows():
    rng = random.Random(1)
    lengths = [rng.randint(5, 300) for _ in range(500)]
    rows = first_fit(lengths, capacity=512)
    assert sorted(i for row in rows for i in row) == list(range(500))
    assert all(sum(lengths[i] for i in row) <= 512 for row in rows)
    lower_bound = -(-sum(lengths) // 512)
    assert len(rows) <= lower_bound * 11 // 9 + 1  # first-fit decreasing's guarantee


def test_collated_rows_restart_positions_and_never_target_across_samples(tokenizer):
    records = [sft_record(f"r{i}", "code" if i % 2 else "plan", f"Task {i}.", "x = 1\n" * (i + 1)) for i in range(5)]
    examples = tokenize_records(records, tokenizer)
    dataset = PackedDataset(examples, max_length=sum(len(e) for e in examples), packing=True)
    assert len(dataset) == 1  # all five share one row
    batch = PackedCollator(tokenizer.pad_token_id, pad_to_multiple_of=64)([dataset[0]])
    assert "attention_mask" not in batch  # transformers reads sample boundaries from position_ids instead
    positions, labels, tasks = batch["position_ids"][0].tolist(), batch["labels"][0].tolist(), batch["task_ids"][0]
    starts = [i for i, p in enumerate(positions) if p == 0]
    lengths = [len(examples[i]) for i in dataset.rows[0]]
    assert starts[: len(lengths)] == [sum(lengths[:k]) for k in range(len(lengths))]
    assert all(labels[s] == IGNORE for s in starts)
    real = sum(lengths)
    assert len(positions) == 64 * -(-real // 64)
    assert positions[real:] == list(range(len(positions) - real))  # the padding is a separate "sample"
    assert set(labels[real:]) <= {IGNORE} and set(tasks[real:].tolist()) <= {-1}
    for k, i in enumerate(dataset.rows[0]):
        assert set(tasks[starts[k]:starts[k] + lengths[k]].tolist()) == {examples[i].task}
