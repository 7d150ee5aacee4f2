"""The multi-task loss of CodePLAN, computed per token group:

    loss = w_code * (sum of CE over code tokens) / N_code + w_plan * (sum of CE over plan tokens) / N_plan

with ``w_code = 1 - λ`` and ``w_plan = λ``, where ``N_task`` counts the task's target tokens over the whole
optimizer step (every micro-batch of the gradient accumulation, every process). Summing this over the
micro-batches of a step gives exactly the weighted mean of the two per-task token means, whatever the
micro-batching. A task with no tokens in a step contributes 0 and the other keeps its own weight.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F

from training._data import IGNORE, TASKS


def task_weights(plan_weight: float, tasks_present: Collection[str] = TASKS) -> tuple[float, ...]:
    """``(1-λ, λ)`` when the data hold both tasks; a single task present in the data gets weight 1.

    Without the second rule, code-only data with the default λ = 0.5 would silently train at half the
    learning rate; with it, one-task data train as plain SFT.
    """
    present = [t for t in TASKS if t in tasks_present]
    if len(present) == 1:
        return tuple(1.0 if t in present else 0.0 for t in TASKS)
    return (1.0 - plan_weight, plan_weight)


def task_token_counts(labels: torch.Tensor, task_ids: torch.Tensor, weights: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """Target tokens per task, shape ``(len(TASKS),)``: the labels a causal LM predicts (``labels[:, 1:]``).

    With per-token ``weights`` (records weighted by their tags), the sum of the targets' weights instead,
    so each task's loss is the weighted mean of its tokens' cross-entropy.
    """
    target = labels[..., 1:] != IGNORE
    tid = task_ids[..., 1:]
    if weights is None:
        return torch.stack([(target & (tid == t)).sum() for t in range(len(TASKS))])
    w = weights[..., 1:].float()
    return torch.stack([(w * (target & (tid == t))).sum() for t in range(len(TASKS))])


def task_ce_sums(logits: torch.Tensor, labels: torch.Tensor, task_ids: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Summed next-token cross-entropy per task, shape ``(len(TASKS),)``, in float32; each token's times its
    weight when per-token ``weights`` are given."""
    vocab = logits.shape[-1]
    ce = F.cross_entropy(logits[..., :-1, :].reshape(-1, vocab).float(), labels[..., 1:].reshape(-1),
                         ignore_index=IGNORE, reduction="none")
    if weights is not None:
        ce = ce * weights[..., 1:].reshape(-1).to(ce)
    tid = task_ids[..., 1:].reshape(-1)
    return torch.stack([ce.masked_fill(tid != t, 0.0).sum() for t in range(len(TASKS))])


def weighted_loss(ce_sums: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_t weights[t] · ce_sums[t] / counts[t]``; a task with ``counts[t] == 0`` adds 0 (its sum is 0 too).
    Counts may be weighted token counts below 1, so only a zero is replaced (not clamped to 1)."""
    counts = counts.to(ce_sums.device, torch.float32)
    return (weights.to(ce_sums.device) * ce_sums / torch.where(counts > 0, counts, 1.0)).sum()
