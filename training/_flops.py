"""Model FLOPs utilisation (MFU) of a GPU run: the FLOPs the model needs per token, times tokens per second,
over the device's peak dense bf16 FLOP/s. It says how much of the GPU the run uses, whatever the model size.

FLOPs per token (PaLM, appendix B): 6 per parameter (2 forward, 4 backward: the gradients of the activations
and of the weights), or with LoRA 4 per frozen parameter (no weight gradient) and 6 per adapter parameter;
plus attention, ``12 x layers x (heads x head_dim) x seq``, where ``seq`` is the length of the sample a
token attends within (packed samples attend only inside themselves), token-weighted over the training data.
Counted per real token: padding is not model work.
"""

from __future__ import annotations

from collections.abc import Iterable

from training._memory import ModelShape

# Peak dense bf16 FLOP/s by device name (the first name contained in it wins, so the PCIe H100 comes first).
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12), ("L4", 121e12))


def peak_flops(device_name: str) -> float | None:
    """The device's peak dense bf16 FLOP/s; None for a device not in the table (then no MFU)."""
    return next((peak for name, peak in PEAK_BF16 if name in device_name), None)


def attended_length(lengths: Iterable[int]) -> float:
    """The sample length an average token attends within: ``sum(n^2) / sum(n)`` over the samples."""
    n = list(lengths)
    return sum(x * x for x in n) / sum(n) if sum(n) else 0.0


def flops_per_token(shape: ModelShape, seq: float, lora_params: int | None = None) -> float:
    """Training FLOPs per token; ``lora_params``: the adapters' parameter count when only they are trained."""
    weights = 6.0 * shape.params if lora_params is None else 4.0 * shape.params + 6.0 * lora_params
    return weights + 12.0 * shape.layers * shape.q_size * seq


def mfu(tokens_per_s: float, flops_per_token: float, peak: float | None, devices: int = 1) -> float | None:
    """Achieved over peak FLOP/s; ``tokens_per_s`` over all ``devices``. None without a known peak."""
    if not peak or devices < 1:
        return None
    return tokens_per_s * flops_per_token / (peak * devices)
