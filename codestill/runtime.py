"""Process-wide settings a codestill *program* (the CLI, a benchmark) makes before any work starts.
Libraries never call this; nothing here runs at import time."""

from __future__ import annotations

import gc
import os


def prefer_passive_openmp() -> None:
    """Make torch's OpenMP threads sleep, not spin, while they wait for work (unless the user chose).

    Why: with OpenMP's default active wait, a small torch op on 2 threads stalls whenever another
    process holds one of the cores. Measured on the 2-core machine with a training run beside it:
    embedding one memory query took 400 ms with spinning threads and 11 ms with sleeping ones (10 ms
    on one thread). Sandboxes, servers and trainers share the cores in every codestill run. OpenMP
    reads the variable once, when torch loads, so this must run before the first torch import.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def settle_heap() -> None:
    """Collect garbage once, then exempt every object alive now from the cyclic collector (``gc.freeze``).

    Call it when a long-running program has loaded what it needs and is about to start its work.
    Why: a full collection walks every tracked object, and a batch runner's imports (LangChain,
    LangGraph, pydantic schemas, the OpenAI SDK, Chroma's client) leave well over a million of them
    alive for the whole run. Measured on the 2-core machine: each full collection stopped the event
    loop for 150-180 ms, twice in a 100-task solve run at concurrency 32, and every task in flight
    waited through each one (about 60 ms per task of the solve graph's 350 ms overhead). Frozen objects
    are modules, classes and caches that live as long as the program anyway; what the work creates
    afterwards is collected as usual, and garbage from the start-up is collected first, not frozen.
    """
    gc.collect()
    gc.freeze()
