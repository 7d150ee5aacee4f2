"""Batched generation for one local transformers model: concurrent requests share the decoding steps.

A 135M model on a CPU makes ~21 tokens/s for one sequence and ~135 tokens/s in total for a batch of
four, so concurrent requests are worth batching. One worker thread owns the model (started on the
first request, a daemon, so nothing waits for it at exit) and decodes with continuous batching
(``_hf_decode``): up to ``max_batch`` requests are live at once, each leaves the batch as soon as it
stops (EOS, its token limit, its time limit, or its own ``stop`` check) and a waiting one takes its
place, so no step is spent on a finished request and none waits for the slowest of its batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, Literal

from codestill._hf_decode import Decoder, Row

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
    """A prompt's token ids and how to continue it. ``seed`` makes a sampled request draw the same tokens
    whatever shares its batch; ``stop(ids so far)`` ends it early (e.g. once a code block has closed)."""

    ids: list[int]
    max_new: int
    temperature: float
    top_p: float = 1.0
    seed: int | None = None
    stop: Callable[[list[int]], bool] | None = None
    future: Future[Output] = field(default_factory=Future)


@dataclass
class BatchStats:
    """How many prefill rounds admitted how many requests (fewer batches than requests = batching),
    and how many decoding steps ran."""

    batches: int = 0
    requests: int = 0
    steps: int = 0


class Batcher:
    """The one thread that runs the model; ``submit`` from any thread or event loop."""

    def __init__(self, model: Any, eos_ids: set[int], pad_id: int, *, max_batch: int,
                 max_time: float | None, stats: BatchStats) -> None:
        self._model, self._eos, self._pad = model, eos_ids, pad_id
        self._max_batch, self._max_time, self.stats = max_batch, max_time, stats
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._owners: dict[Row, Request] = {}  # the worker's own: rows joined and not yet finished
        self._abandon = threading.Event()
        self._decoder = Decoder(model, eos_ids, pad_id)  # here, so a model it cannot drive fails the caller

    def submit(self, request: Request) -> Future[Output]:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="codestill-hf-generate", daemon=True)
                self._thread.start()
        self._queue.put(request)
        return request.future

    def close(self, wait: bool = False) -> None:
        """Let the worker finish what it holds and exit. ``wait``: drop what it holds instead (its callers
        get ``CancelledError``) and return once it has exited after its current step: a process that
        ends while the worker is inside torch aborts ("terminate called without an active exception")."""
        if wait:
            self._abandon.set()
        self._queue.put(None)
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _serve(self) -> None:
        decoder = self._decoder
        waiting: list[Request] = []
        closing = False
        while True:
            if self._abandon.is_set():
                while not self._queue.empty():
                    item = self._queue.get_nowait()
                    waiting += [item] if item is not None else []
                for request in [*self._owners.values(), *waiting]:
                    if not request.future.cancel() and not request.future.done():  # running: cannot be cancelled
                        request.future.set_exception(CancelledError("the model was closed"))
                self._owners.clear()
                decoder.reset()
                return
            if not decoder.rows and not waiting:
                if closing:
                    return
                first = self._queue.get()  # idle: block until there is work
                if first is None:
                    return
                waiting.append(first)
                time.sleep(_GATHER_S)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                else:
                    waiting.append(more)
            if waiting and self._admit_now(decoder, len(waiting)):
                free = self._max_batch - len(decoder.rows)
                joining, waiting = waiting[:free], waiting[free:]
                self._join(decoder, [r for r in joining if r.future.set_running_or_notify_cancel()])
            self._step(decoder)

    def _admit_now(self, decoder: Decoder, waiting: int) -> bool:
        """Whether waiting requests join now: into a free batch at once, else when a quarter of the slots
        (or all that wait) can join together, so stacking caches is not paid for one row at a time."""
        free = self._max_batch - len(decoder.rows)
        if not decoder.accepts or free <= 0:
            return False
        return not decoder.rows or free >= min(waiting, max(1, self._max_batch // 4))

    def _join(self, decoder: Decoder, requests: list[Request]) -> None:
        if not requests:
            return
        rows = {Row(r.ids, r.max_new, r.temperature, r.top_p, r.seed, r.stop, self._max_time): r for r in requests}
        self._owners.update(rows)
        try:
            done = decoder.join(list(rows))
        except BaseException as e:  # e.g. out of memory: each caller gets the error, the worker lives on
            self._fail(decoder, e)
            return
        self.stats.batches += 1
        self.stats.requests += len(requests)
        self._finish(done)

    def _step(self, decoder: Decoder) -> None:
        try:
            done = decoder.step()
        except BaseException as e:
            self._fail(decoder, e)
            return
        self.stats.steps = decoder.steps
        self._finish(done)

    def _finish(self, rows: list[Row]) -> None:
        for row in rows:
            assert row.finish is not None
            self._owners.pop(row).future.set_result(Output(row.out, row.finish, row.timed_out))

    def _fail(self, decoder: Decoder, error: BaseException) -> None:
        """Every request the decoder held gets ``error``; the decoder starts empty."""
        for request in self._owners.values():
            if not request.future.done():
                request.future.set_exception(error)
        self._owners.clear()
        decoder.reset()
