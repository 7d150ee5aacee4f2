"""Process-wide settings a codestill *program* (the CLI, a benchmark) makes before any work starts.
Libraries never call this; nothing here runs at import time."""

from __future__ import annotations

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
