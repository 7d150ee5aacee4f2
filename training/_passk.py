"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With n samples of a problem of which c pass, the chance that at least one of k samples drawn without
replacement passes is ``1 - C(n-c, k) / C(n, k)``. The binomials overflow floats for large n, so it is
computed as the paper's numerically stable product ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``; the benchmark
score is the mean over problems.
"""

from __future__ import annotations

from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` of ``n`` samples passing (1 <= k <= n, 0 <= c <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:  # every draw of k samples holds a passing one
        return 1.0
    failing_draws = 1.0
    for i in range(n - c + 1, n + 1):
        failing_draws *= 1.0 - k / i
    return 1.0 - failing_draws


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """The benchmark's pass@k: the mean of ``pass_at_k`` over (n, c) per problem; 0.0 for no problems."""
    if not counts:
        return 0.0
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
