"""Weighting records by their export tags (``TrainConfig.tag_weights``, ``--tag-weight``): within a task the loss is
the weighted mean of its tokens' cross-entropy, e.g. backward plans counting half as much as forward ones.
Expected values by hand, as in test_loss.py: each example run alone, CE at its assistant tokens only."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codestill.errors import TrainingError
from codestill.schemas import SFTRecord
from tests.training.conftest import sft_record
from tests.training.test_loss import answer_ce, make_trainer, model_of, rows
from training import (
    IGNORE,
    TrainConfig,
    task_ce_sums,
    task_token_counts,
    task_weights,
    tokenize_records,
    weighted_loss,
)
from training._rundir import check_out_dir
from training.trainer import IDENTITY_DEFAULTS, RUN_IDENTITY


def tagged(rid: str, task: str, prompt: str, answer: str, *tags: str) -> SFTRecord:
    return sft_record(rid, task, prompt, answer).model_copy(update={"tags": tags})


@pytest.fixture(scope="module")
def records() -> list[SFTRecord]:
    return [
        tagged("code", "code", "Write a function to add two numbers.", "def add(a, b):\n    return a + b\n",
               "code:final"),
        tagged("fwd", "plan", "Plan: find the shared elements.", "1. Make a set of each list.\n2. Intersect them.",
               "plan:forward"),
        tagged("bwd", "plan", "Plan: sum the positive items.", "1. Keep the positive items.\n2. Add them up.",
               "plan:backward", "extra"),
        sft_record("untagged", "plan", "Plan: add two numbers.", "1. Return a + b."),
    ]


def test_a_records_weight_is_the_product_of_its_tags_weights(records, tokenizer) -> None:
    examples = tokenize_records(records, tokenizer, {"plan:backward": 0.5, "extra": 0.5, "code:final": 2.0})
    assert [e.weight for e in examples] == [2.0, 1.0, 0.25, 1.0]
    assert [e.weight for e in tokenize_records(records, tokenizer)] == [1.0] * 4


def test_toy_weighted_plan_mean_by_hand() -> None:
    """3 classes; logits (ln 2, 0, 0) give CE ln 2 for class 0 and ln 4 for class 1; (0, 0, 0) give ln 3."""
    ln2, ln3, lam = math.log(2), math.log(3), 0.25
    half, flat = [ln2, 0.0, 0.0], [0.0, 0.0, 0.0]
    # logits[i] predict labels[i + 1]: a code target (class 0 after half: ln 2), a forward plan target (class 1
    # after half: ln 4, weight 1) and a backward plan target (class 2 after flat: ln 3, weight 0.5); then padding.
    logits = torch.tensor([[half, flat, half, flat, flat, flat, flat]])
    labels = torch.tensor([[IGNORE, 0, IGNORE, 1, IGNORE, 2, IGNORE]])
    tasks = torch.tensor([[0, 0, 1, 1, 1, 1, -1]])
    weights = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0]])
    counts = task_token_counts(labels, tasks, weights)
    torch.testing.assert_close(counts, torch.tensor([1.0, 1.5]))
    got = weighted_loss(task_ce_sums(logits, labels, tasks, weights), counts, torch.tensor(task_weights(lam)))
    expected = (1 - lam) * ln2 + lam * (1.0 * math.log(4) + 0.5 * ln3) / 1.5
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # Weights below one token's worth are divided by, not clamped to 1 (the unweighted code's zero guard).
    small = torch.tensor([[0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]])
    only = weighted_loss(task_ce_sums(logits, labels, tasks, small), task_token_counts(labels, tasks, small),
                         torch.tensor([1.0, 0.0]))
    assert only.item() == pytest.approx(ln2, rel=1e-6)


def test_the_trainer_step_uses_the_weighted_plan_mean(records, tokenizer, tiny_student, tmp_path) -> None:
    lam = 0.5
    examples = {e.id: e for e in tokenize_records(records, tokenizer, {"plan:backward": 0.5})}
    trainer = make_trainer(tiny_student, tmp_path, task_weights(lam))
    batch = rows([examples["code"], examples["fwd"], examples["bwd"]], packing=True)
    assert batch["weights"].dtype == torch.float32
    batches, n = trainer.get_batch_samples(iter([batch]), 1, trainer.args.device)
    got = trainer.training_step(model_of(trainer), batches[0], n).item()
    ce = {k: answer_ce(model_of(trainer), examples[k]) for k in ("code", "fwd", "bwd")}
    plan = (ce["fwd"].sum() + 0.5 * ce["bwd"].sum()) / (len(ce["fwd"]) + 0.5 * len(ce["bwd"]))
    expected = (1 - lam) * ce["code"].mean().item() + lam * plan.item()
    assert got == pytest.approx(expected, rel=1e-5)
    unweighted = (ce["fwd"].sum() + ce["bwd"].sum()) / (len(ce["fwd"]) + len(ce["bwd"]))
    assert abs(plan.item() - unweighted.item()) > 1e-4  # the weight changes the number
    # Without weights the rows keep their old shape (no "weights" key at all).
    assert "weights" not in rows(tokenize_records(records, tokenizer), packing=True)


def test_tag_weights_are_part_of_a_runs_identity(tmp_path: Path) -> None:
    base = TrainConfig(data=tmp_path / "sft.jsonl", student="s", out=tmp_path / "out").model_dump(mode="json")
    older = {k: v for k, v in base.items() if k != "tag_weights"}  # recorded before tag weights existed
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "config.json").write_text(json.dumps(older))
    check_out_dir(tmp_path / "out", base, RUN_IDENTITY, resume=True, defaults=IDENTITY_DEFAULTS)
    weighted = {**base, "tag_weights": {"plan:backward": 0.5}}
    with pytest.raises(TrainingError, match=r"tag_weights=\{\}, this one has tag_weights=\{'plan:backward': 0.5\}"):
        check_out_dir(tmp_path / "out", weighted, RUN_IDENTITY, resume=True, defaults=IDENTITY_DEFAULTS)


def test_cli_refuses_a_malformed_tag_weight(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).with_name("codestill"))
    for value, message in [("plan:backward", "expected TAG=WEIGHT"), ("plan:backward=-1", "greater than or equal")]:
        done = subprocess.run([cli, "train", "--data", str(tmp_path / "x.jsonl"), "--student", "s", "--out",
                               str(tmp_path / "o"), "--tag-weight", value], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()
