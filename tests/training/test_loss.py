"""The weighted multi-task loss and packing isolation, through CodestillTrainer's own training step.

Expected values are computed by hand: each example is run alone through the same model, its next-token
cross-entropies are taken at the assistant positions only, and the task means are combined with λ.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.training.conftest import sft_record
from training import (
    IGNORE,
    CodestillTrainer,
    Example,
    PackedCollator,
    PackedDataset,
    task_ce_sums,
    task_token_counts,
    task_weights,
    tokenize_records,
    weighted_loss,
)


def model_of(trainer: CodestillTrainer) -> torch.nn.Module:
    assert trainer.model is not None
    return trainer.model


def make_trainer(student: Path, out: Path, weights: tuple[float, ...], grad_accum: int = 1,
                 attn: str = "sdpa") -> CodestillTrainer:
    from transformers import AutoModelForCausalLM, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(student, local_files_only=True, attn_implementation=attn)
    args = TrainingArguments(output_dir=str(out), report_to="none", use_cpu=True, disable_tqdm=True,
                             gradient_accumulation_steps=grad_accum, remove_unused_columns=False)
    trainer = CodestillTrainer(model=model, args=args, task_weights=weights)
    model.train()  # trainer.model is this model
    return trainer


def rows(examples: list[Example], packing: bool) -> dict[str, torch.Tensor]:
    dataset = PackedDataset(examples, max_length=sum(len(e) for e in examples), packing=packing)
    return PackedCollator(pad_token_id=2)([dataset[k] for k in range(len(dataset))])


def answer_ce(model: torch.nn.Module, e: Example) -> torch.Tensor:
    """Per-token cross-entropy of one example run alone, at its assistant tokens only."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([e.input_ids])).logits[0, :-1]
    ce = F.cross_entropy(logits, torch.tensor(e.input_ids[1:]), reduction="none")
    return ce[torch.tensor(e.labels[1:]) != IGNORE]


def all_ce(model: torch.nn.Module, e: Example) -> torch.Tensor:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([e.input_ids])).logits[0, :-1]
    return F.cross_entropy(logits, torch.tensor(e.input_ids[1:]), reduction="none")


@pytest.fixture(scope="module")
def examples(tokenizer) -> dict[str, Example]:
    records = [
        sft_record("a", "code", "Write a function to add two numbers.", "def add(a, b):\n    return a + b\n"),
        sft_record("b", "plan", "Plan: find the shared elements from the given two lists.",
                   "1. Make a set of each list.\n2. Intersect them.\n3. Return a tuple."),
        sft_record("c", "code", "Sum the positive items.", "total = sum(x for x in xs if x > 0)"),
    ]
    return {e.id: e for e in tokenize_records(records, tokenizer)}


def test_toy_step_by_hand_normalises_each_task_over_all_micro_batches():
    """Two micro-batches of one optimizer step, logits chosen so every cross-entropy is a known logarithm.

    With 3 classes, logits (ln 2, 0, 0) give CE ln 2 for class 0 and ln 4 for class 1; (0, 0, 0) give ln 3.
    """
    ln2, ln3, lam = math.log(2), math.log(3), 0.25
    half, flat = [ln2, 0.0, 0.0], [0.0, 0.0, 0.0]
    # micro-batch 1: a code sample (3 tokens) packed with a plan sample (2 tokens); the plan sample's first
    # label is IGNORE, so position 2 predicts nothing across the boundary.
    mb1 = (torch.tensor([[half, flat, flat, half, flat]]), torch.tensor([[IGNORE, 0, 0, IGNORE, 1]]),
           torch.tensor([[0, 0, 0, 1, 1]]))
    # micro-batch 2: a code sample of 2 tokens and one token of padding (task -1).
    mb2 = (torch.tensor([[[0.0, 0.0, ln2], flat, flat]]), torch.tensor([[IGNORE, 2, IGNORE]]),
           torch.tensor([[0, 0, -1]]))
    counts = task_token_counts(mb1[1], mb1[2]) + task_token_counts(mb2[1], mb2[2])
    assert counts.tolist() == [3, 1]  # code: ln 2, ln 3 (mb1) and ln 2 (mb2); plan: ln 4 (mb1)
    torch.testing.assert_close(task_ce_sums(*mb1), torch.tensor([ln2 + ln3, 2 * ln2]))

    weights = torch.tensor(task_weights(lam))
    got = sum(weighted_loss(task_ce_sums(*mb), counts, weights).item() for mb in (mb1, mb2))
    expected = (1 - lam) * (ln2 + ln3 + ln2) / 3 + lam * (2 * ln2) / 1
    assert got == pytest.approx(expected, rel=1e-6)
    # What normalising each micro-batch by its own tokens would give instead: not the same loss.
    per_micro = ((1 - lam) * (ln2 + ln3) / 2 + lam * 2 * ln2 + (1 - lam) * ln2) / 2
    assert abs(per_micro - expected) > 0.05


def test_masked_loss_ignores_prompt_tokens(tiny_student, tmp_path, examples):
    trainer = make_trainer(tiny_student, tmp_path, task_weights(0.5, ["code"]))  # code only: weight 1
    a = examples["a"]
    got = trainer.compute_loss(model_of(trainer), rows([a], packing=False)).item()
    expected = answer_ce(model_of(trainer), a).mean().item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert abs(all_ce(model_of(trainer), a).mean().item() - expected) > 1e-3  # prompt tokens would change it


def test_lambda_weights_the_task_means_over_the_whole_accumulated_step(tiny_student, tmp_path, examples):
    lam = 0.25
    trainer = make_trainer(tiny_student, tmp_path, task_weights(lam), grad_accum=2)
    a, b, c = examples["a"], examples["b"], examples["c"]
    micro = [rows([a, b], packing=False), rows([c], packing=False)]
    batches, n = trainer.get_batch_samples(iter(micro), 2, trainer.args.device)
    got = sum(trainer.training_step(model_of(trainer), mb, n).item() for mb in batches)  # forward + backward

    ce = {k: answer_ce(model_of(trainer), e) for k, e in examples.items()}
    code_mean = torch.cat([ce["a"], ce["c"]]).mean().item()  # pooled over both micro-batches
    expected = (1 - lam) * code_mean + lam * ce["b"].mean().item()
    assert got == pytest.approx(expected, rel=1e-5)
    # Normalising each micro-batch on its own (the gradient-accumulation bug) gives another number.
    per_micro = ((1 - lam) * ce["a"].mean() + lam * ce["b"].mean() + (1 - lam) * ce["c"].mean()).item() / 2
    assert abs(per_micro - expected) > 1e-3


def test_a_step_without_plan_tokens_keeps_the_code_weight(tiny_student, tmp_path, examples):
    trainer = make_trainer(tiny_student, tmp_path, task_weights(0.25))
    batches, n = trainer.get_batch_samples(iter([rows([examples["a"]], packing=False)]), 1, trainer.args.device)
    got = trainer.training_step(model_of(trainer), batches[0], n).item()
    assert got == pytest.approx(0.75 * answer_ce(model_of(trainer), examples["a"]).mean().item(), rel=1e-5)


def test_single_task_data_trains_as_plain_sft():
    assert task_weights(0.3) == (0.7, 0.3)
    assert task_weights(0.3, ["code"]) == (1.0, 0.0)
    assert task_weights(0.3, ["plan"]) == (0.0, 1.0)


@pytest.mark.parametrize("flatten", [False, True], ids=["rows", "flattened"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rows_give_each_sample_the_logits_and_loss_it_has_alone(tiny_student, tmp_path, examples, attn,
                                                                       flatten):
    trainer = make_trainer(tiny_student, tmp_path, task_weights(0.5), attn=attn)
    order = list(examples.values())
    dataset = PackedDataset(order, max_length=80, packing=True)
    assert [len(r) for r in dataset.rows] == [1, 2]  # two rows, the second holding two samples
    rows_ = [dataset[k] for k in range(len(dataset))]
    collator = PackedCollator(pad_token_id=2, flatten=flatten)
    packed = collator(rows_)
    assert packed["input_ids"].shape[0] == (1 if flatten else 2)
    loss_packed, out = trainer.compute_loss(model_of(trainer), packed, return_outputs=True)
    loss_apart = trainer.compute_loss(model_of(trainer), rows(order, packing=False))
    assert loss_packed.item() == pytest.approx(loss_apart.item(), rel=1e-5)

    samples = [order[i] for row in dataset.rows for i in row]
    for (r, offset, n), e in zip(collator.spans(rows_), samples, strict=True):
        assert n == len(e)
        with torch.no_grad():
            alone = model_of(trainer)(input_ids=torch.tensor([e.input_ids])).logits[0]
        torch.testing.assert_close(out.logits[r, offset:offset + n].detach(), alone, atol=1e-4, rtol=1e-4)


def fa2_like_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, position_ids=None,
                       **kwargs):
    """Reads packed boundaries from position_ids only in a batch of one row, as flash-attention's varlen path
    does in transformers; in a wider batch every row is one causal sequence."""
    mask = None
    if query.shape[0] == 1 and position_ids is not None:
        sample = (torch.diff(position_ids, prepend=position_ids[:, :1] - 1) != 1).cumsum(-1)[0]
        n = sample.shape[0]
        mask = (sample[:, None] == sample[None, :]) & torch.ones(n, n, dtype=torch.bool).tril()
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=mask is None, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def leaky_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Plain causal attention over the whole row: an architecture whose code ignores packed positions."""
    out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


@pytest.mark.parametrize(("attn", "refused"), [
    ("sdpa", {False: False, True: False}),
    ("codestill_test_fa2_like", {False: True, True: False}),  # why flash-attention's batches are flattened
    ("codestill_test_leaky", {False: True, True: True}),
])
def test_the_packing_check_refuses_attention_that_leaks_across_samples(tiny_student, attn, refused):
    from transformers import AttentionInterface, AutoModelForCausalLM

    from codestill.errors import TrainingError
    from training._student import check_packing_isolation

    AttentionInterface.register("codestill_test_fa2_like", fa2_like_attention)
    AttentionInterface.register("codestill_test_leaky", leaky_attention)
    model = AutoModelForCausalLM.from_pretrained(tiny_student, local_files_only=True, attn_implementation=attn)
    for flatten in (False, True):
        collator = PackedCollator(pad_token_id=2, flatten=flatten)
        if refused[flatten]:
            with pytest.raises(TrainingError, match="--no-packing"):
                check_packing_isolation(model, torch.device("cpu"), False, collator)
        else:
            check_packing_isolation(model, torch.device("cpu"), False, collator)
