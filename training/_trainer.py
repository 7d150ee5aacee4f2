"""``CodestillTrainer``: transformers' ``Trainer`` with the per-task weighted loss (``training._loss``).

Four methods change. ``get_batch_samples`` sees every micro-batch of an optimizer step before the
first forward pass, so it counts each task's target tokens over the whole step (summed over processes);
``compute_loss`` divides each task's summed cross-entropy by those step-wide counts; ``log`` adds the
per-task mean losses to what is logged; ``create_scheduler`` moves the warmup one step earlier, so the first
step does not train at learning rate 0. Everything else (optimizer, schedule, checkpoints, resume, DDP
through torchrun / accelerate launch) is the stock Trainer's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch
from transformers import Trainer

from training._data import TASKS
from training._loss import task_ce_sums, task_token_counts, weighted_loss


def _warmup_shifted(step: int, *, schedule: Callable[[int], float], warmup: int) -> float:
    return schedule(step + 1 if step < warmup else step)


class CodestillTrainer(Trainer):
    # compute_loss normalises by the step-wide token counts itself: training_step must not divide again.
    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, task_weights: tuple[float, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task_weights = torch.tensor(task_weights, dtype=torch.float32, device=self.args.device)
        self.step_counts: torch.Tensor | None = None  # per-task target tokens of the current optimizer step
        # Kept on the device and read only when asked for, so counting never stalls the GPU.
        self._real_tokens = torch.zeros((), dtype=torch.long, device=self.args.device)
        # Per-task CE sums and counts since the last log line: [train sums, train counts, eval sums, eval counts].
        self._since_log = torch.zeros(4, len(TASKS), dtype=torch.float64, device=self.args.device)

    @property
    def real_tokens_seen(self) -> int:
        """Non-padding input tokens trained on in this run (not before a resume), over all processes."""
        return int(self._real_tokens)

    def _all_processes_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return t
        total = self.accelerator.reduce(t, reduction="sum")
        assert isinstance(total, torch.Tensor)  # a tensor in, a tensor out
        return total

    def get_batch_samples(self, epoch_iterator: Iterator, num_batches: int, device: torch.device
                          ) -> tuple[list, torch.Tensor | int | None]:
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        # float64: with tag weights the per-task counts are sums of token weights (exact for whole counts).
        counts = torch.zeros(len(TASKS) + 1, dtype=torch.float64, device=device)
        for b in batches:
            counts += torch.cat([task_token_counts(b["labels"], b["task_ids"], b.get("weights")).double(),
                                 (b["task_ids"] >= 0).sum().reshape(1).double()]).to(device)
        counts = self._all_processes_sum(counts)
        self.step_counts = counts[:-1]
        self._real_tokens += counts[-1].long()
        return batches, num_items

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None) -> Any:
        labels, task_ids, weights = inputs["labels"], inputs["task_ids"], inputs.get("weights")
        model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "task_ids", "weights")}
        # use_cache=False matters: with a cache transformers skips reading packed boundaries from position_ids.
        outputs = model(**model_inputs, use_cache=False)
        sums = task_ce_sums(outputs.logits, labels, task_ids, weights)
        own_counts = task_token_counts(labels, task_ids, weights)
        if model.training and self.step_counts is not None:
            counts = self.step_counts
            # DDP averages gradients over processes while counts are global: scale back to a plain sum.
            scale, row = self.accelerator.num_processes, 0
        else:  # evaluation: each batch on its own; log() replaces the mean over batches by the exact loss
            counts, scale, row = own_counts, 1, 2
        self._since_log[row] += sums.detach().to(self._since_log)
        self._since_log[row + 1] += own_counts.to(self._since_log)
        loss = weighted_loss(sums, counts, self.task_weights) * scale
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        row, prefix = (0, "loss_") if "loss" in logs else (2, "eval_loss_") if "eval_loss" in logs else (-1, "")
        if row >= 0:
            since = self._all_processes_sum(self._since_log[row:row + 2].clone()).cpu()
            means = since[0] / since[1].clamp(min=1)
            for t, name in enumerate(TASKS):
                if since[1, t] > 0:
                    logs[prefix + name] = round(float(means[t]), 6)
            if row == 2 and since[1].sum() > 0:
                # The Trainer's eval_loss averages per-batch losses, and a batch holding one task only would
                # count at that task's weight alone; the weighted per-task means over the whole split are exact.
                logs["eval_loss"] = float((self.task_weights.double() * means).sum())
            self._since_log[row:row + 2] = 0
        super().log(logs, start_time)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        """The user's schedule, its warmup one step earlier: step s < warmup gets the factor of step s + 1.

        transformers' warmup gives the first optimizer step the factor 0/warmup: a step computed, applied at
        learning rate 0, wasted (with 2 steps, half the run). Shifted, a warmup of one step is no warmup, and
        a longer one ends one step earlier at the peak. Any HF schedule built on ``LambdaLR`` is shifted (all
        with a warmup are); ``functools.partial`` keeps it out of the scheduler's saved state, as HF's own.
        """
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        warmup = self.args.get_warmup_steps(num_training_steps)
        if created and warmup > 0 and isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            scheduler.lr_lambdas = [partial(_warmup_shifted, schedule=f, warmup=warmup) for f in scheduler.lr_lambdas]
            # LambdaLR set the learning rate of step 0 when it was built: set it again with the shifted factor.
            for group, base, f in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas,
                                      strict=True):
                group["lr"] = base * f(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
        return scheduler
