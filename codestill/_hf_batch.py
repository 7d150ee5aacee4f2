"""Batched generation for one local transformers model: concurrent requests share one ``generate``.

A 135M model on a CPU makes ~21 tokens/s for one sequence and ~135 tokens/s in total for a batch of
four, so concurrent agent calls are worth batching. One worker thread owns the model (started on the
first request, a daemon, so nothing waits for it at exit); it takes every pending request with the
same sampling settings, left-pads them, and runs one ``generate`` with the largest token limit; each
row stops at its own limit, at EOS, or when the batch's time limit runs out.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

# After the first request arrives, how long to wait for the others of a burst (a concurrent
# fan-out reaches the queue a few ms apart); negligible beside a generation's seconds.
_GATHER_S = 0.005


@dataclass(frozen=True)
class Output:
    """The generated token ids (EOS and padding excluded) and why generation stopped."""

    ids: list[int]
    finish: Literal["stop", "length"]
    timed_out: bool = False


@dataclass(eq=False)
class Request:
    ids: list[int]
    max_new: int
    temperature: float
    future: Future[Output] = field(default_factory=Future)


@dataclass
class BatchStats:
    """How many ``generate`` calls served how many requests (fewer batches than requests = batching)."""

    batches: int = 0
    requests: int = 0


class Batcher:
    """The one thread that runs ``model.generate``; ``submit`` from any thread or event loop."""

    def __init__(self, model: Any, eos_ids: set[int], pad_id: int, *, max_batch: int,
                 max_time: float | None, stats: BatchStats) -> None:
        self._model, self._eos, self._pad = model, eos_ids, pad_id
        self._max_batch, self._max_time, self.stats = max_batch, max_time, stats
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, request: Request) -> Future[Output]:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="codestill-hf-generate", daemon=True)
                self._thread.start()
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        """Let the worker finish what it holds and exit."""
        self._queue.put(None)

    def _serve(self) -> None:
        pending: list[Request] = []
        while True:
            if not pending:
                first = self._queue.get()
                if first is None:
                    return
                pending.append(first)
                time.sleep(_GATHER_S)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    return
                pending.append(more)
            key = pending[0].temperature
            batch = [r for r in pending if r.temperature == key][:self._max_batch]
            pending = [r for r in pending if r not in batch]
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, batch: list[Request]) -> None:
        try:
            rows = self._generate(batch)
        except BaseException as e:  # e.g. out of memory: each caller gets the error, the worker lives on
            for r in batch:
                r.future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.requests += len(batch)
        for r, row in zip(batch, rows, strict=True):
            r.future.set_result(self._cut(row, r.max_new))

    def _generate(self, batch: list[Request]) -> list[list[int]]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        width = max(len(r.ids) for r in batch)
        device = self._model.device
        ids = torch.tensor([[self._pad] * (width - len(r.ids)) + r.ids for r in batch], device=device)
        mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in batch], device=device)
        limits = torch.tensor([r.max_new for r in batch], device=device)

        class RowLimits(StoppingCriteria):
            """Each row is done at its own token limit (the batch runs to the largest)."""

            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
                return (input_ids.shape[1] - width) >= limits

        t = batch[0].temperature
        sampling: dict[str, Any] = {"do_sample": True, "temperature": t} if t > 0 else {"do_sample": False}
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=int(limits.max()), max_time=self._max_time,
                stopping_criteria=StoppingCriteriaList([RowLimits()]), pad_token_id=self._pad, **sampling)
        return out[:, width:].tolist()

    def _cut(self, row: list[int], limit: int) -> Output:
        for i, token in enumerate(row[:limit]):
            if token in self._eos:
                return Output(row[:i], "stop")
        if len(row) >= limit:
            return Output(row[:limit], "length")
        return Output(row, "length", timed_out=True)
