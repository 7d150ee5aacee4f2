"""Will a run fit? Its peak memory estimated from the student's ``config.json`` and the header of its weights
(nothing loaded), and the micro-batch and gradient checkpointing that fit the machine it runs on.

A CPU run that does not fit is not told so by Python: the kernel's OOM killer ends it without a word (a
SmolLM2-135M LoRA run at batch 4 x 2048 tokens died at 22.8 GB). So the auto values are picked to fit, and a
setting that will not fit is refused before anything is written.

What the estimate counts (bytes; L = row length, i.e. ``max_length``; a micro-batch holds ``rows`` rows):

- fixed: the weights; for full fine-tuning their gradients and AdamW's two moments (fp32), for LoRA those
  of the adapters only; autocast's bf16 copies of the weights; DDP's gradient buckets; the process itself.
- per row, without checkpointing: the tensors autograd saves in every layer, per token
  ``6·hidden + 4·q + 4·intermediate`` values (q = heads x head_dim), LoRA adding ``6·hidden + 2·q +
  intermediate + 7·r`` (each adapted projection's dropped-out input, the adapters' outputs) -- counted
  with ``torch.autograd.graph.saved_tensors_hooks`` on SmolLM2;
  sdpa's attention mask: a packed row's block-diagonal mask is turned into a float L x L mask in every layer
  and saved (CPU and CUDA sdpa with a mask; eager keeps heads x L x L scores instead, flash-attention none);
  the logits over the vocabulary: logits, their log-softmax, its gradient, the logits' gradient and the copy
  a shifted batch needs, 5 x L x vocab fp32 -- the largest part for a small model with a big vocabulary.
- per row, with checkpointing: each layer's input, one layer's saved tensors (recomputed in the backward
  pass), the mask of that layer, and the same logits; on CPU with LoRA also the adapters' temporaries of
  every layer (see below).

Calibration (CPU, 2 cores, torch 2.13, transformers 5.24; SmolLM2-135M-Instruct fp32, 30 layers, hidden 576,
vocab 49152, sdpa; peak RSS (``ru_maxrss``) of ``train`` runs of 2 steps (1 for the last), the data's rows
packed full; GB = 1e9 bytes; the estimate in brackets):

    full fine-tuning  L=512  batch 1: 3.61 [4.42]   checkpointing: 3.21 [3.65]
                      L=512  batch 2: 4.69 [5.81]   checkpointing: 3.40 [4.27]
                      L=1024 batch 1: 4.79 [5.88]   checkpointing: 3.38 [4.27]
                      L=1024 batch 2: 7.50 [8.74]   checkpointing: 4.23 [5.52]
                      L=2048 batch 1:               checkpointing: 4.24 [5.53]
    LoRA r=16         L=512  batch 2: 5.17 [6.06]
                      L=1024 batch 1: 4.39 [6.15]   checkpointing: 3.16 [4.09]
                      L=1024 batch 2: 9.37 [10.96]  checkpointing: 4.88 [6.85]
                      L=2048 batch 1: 10.2 [11.32]  (the run a user reported)
                      L=2048 batch 2:               checkpointing: 11.92 [12.38]

Every estimate is above its measurement, by 4% to 40%. The peak RSS is above the live tensors because glibc
keeps freed heap for reuse, and LoRA's many small temporaries (dropout noise, r-wide outputs) fragment it
most: with checkpointing a LoRA row at 2048 tokens peaked 1.9 GB above a full fine-tuning one although both
save the same tensors. (``MALLOC_MMAP_THRESHOLD_=1048576`` took that row from 3.97 to 1.67 GiB, but ran ~12%
slower in one A/B on the shared machine: not set.) CUDA (bf16 autocast, the caching allocator) has not been
measured: its numbers follow the same count with bf16 activations and no allocator factors.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GB = 1e9
MEMORY_ENV = "CODESTILL_MEMORY_GB"
# An automatic choice leaves this share of the available memory free, for whatever else the machine starts
# while the run goes on (the estimate itself errs high on every run above).
MARGIN = 0.1
# The process itself: Python, torch, the tokenizer and the tokenised records (CPU, measured: ~0.5 GB besides
# the weights at the first step); on a GPU the CUDA context is already outside the free memory measured.
_RUNTIME = {"cpu": 0.6 * GB, "cuda": 0.4 * GB}
# glibc keeps freed heap for reuse, so a CPU run's peak RSS is above the live tensors it holds at any time.
_CPU_ALLOCATOR = 1.1
# LoRA on CPU: its many small temporaries fragment the heap further: a row costs ~1.3x the tensors counted
# (fitted to the LoRA runs above; at batch 2 a row costs more than at batch 1).
_CPU_LORA = 1.3


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a causal LM."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @property
    def q_size(self) -> int:
        return self.heads * self.head_dim

    def lora_params(self, r: int) -> int:
        """peft's ``all-linear`` adapters: ``r x (in + out)`` for the seven projections of every layer."""
        h, q, kv, i = self.hidden, self.q_size, self.kv_heads * self.head_dim, self.intermediate
        return self.layers * r * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h))


def _first(config: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = config.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _params_from_config(c: dict[str, Any], layers: int, h: int, i: int, q: int, kv: int, vocab: int) -> int:
    embeddings = vocab * h * (1 if c.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (2 * h * q + 2 * h * kv + 3 * h * i + 2 * h) + h


def _safetensors_params(directory: Path) -> int | None:
    """Parameters counted from the safetensors headers (8-byte length, then JSON): no weight is read."""
    index = directory / "model.safetensors.index.json"
    try:
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        elif (directory / "model.safetensors").is_file():
            files = ["model.safetensors"]
        else:
            return None
        total = 0
        for name in files:
            with (directory / name).open("rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
            total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
        return total
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def _hub_config(student: str) -> tuple[dict[str, Any], int | None] | None:
    """A hub student's config.json (the student is downloaded anyway) and its safetensors parameter count."""
    try:
        from huggingface_hub import get_safetensors_metadata, hf_hub_download

        config = json.loads(Path(hf_hub_download(student, "config.json")).read_text())
    except Exception:  # no network, no such repo: the loader says so, with its fix, right after
        return None
    try:
        params: int | None = sum(get_safetensors_metadata(student).parameter_count.values())
    except Exception:
        params = None
    return config, params


def model_shape(student: str, local: bool) -> ModelShape | None:
    """The shape of ``student`` from its config.json, or None when it cannot be read (then no estimate)."""
    if local:
        try:
            config = json.loads((Path(student) / "config.json").read_text())
        except (OSError, ValueError):
            return None
        params = _safetensors_params(Path(student))
    else:
        found = _hub_config(student)
        if found is None:
            return None
        config, params = found
    if not isinstance(config, dict):
        return None
    if "num_hidden_layers" not in config and isinstance(config.get("text_config"), dict):
        config = config["text_config"]  # a multimodal model: the language model's part
    layers = _first(config, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    heads = _first(config, "num_attention_heads", "n_head")
    vocab = _first(config, "vocab_size")
    if not (layers and hidden and heads and vocab):
        return None
    intermediate = _first(config, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    kv_heads = _first(config, "num_key_value_heads") or heads
    head_dim = _first(config, "head_dim") or hidden // heads
    params = params or _params_from_config(config, layers, hidden, intermediate, heads * head_dim,
                                           kv_heads * head_dim, vocab)
    return ModelShape(params=params, layers=layers, hidden=hidden, intermediate=intermediate, heads=heads,
                      kv_heads=kv_heads, head_dim=head_dim, vocab=vocab)


@dataclass(frozen=True)
class Estimate:
    """Peak memory of one process, in bytes: ``fixed + rows * per_row``."""

    fixed: float
    per_row: float
    rows: int

    @property
    def total(self) -> float:
        return self.fixed + self.rows * self.per_row


@dataclass(frozen=True)
class Setup:
    """Everything besides the micro-batch and checkpointing that the estimate depends on."""

    shape: ModelShape
    length: int
    lora: bool
    lora_r: int
    bf16: bool
    device: str  # "cpu" or "cuda"
    attention: str
    processes: int = 1  # data-parallel processes (each holds its own copy of everything)


def estimate(s: Setup, rows: int, checkpointing: bool) -> Estimate:
    """Peak memory of one process training ``rows`` rows per micro-batch (the count in the module docstring)."""
    m, L = s.shape, s.length
    h, q, i = m.hidden, m.q_size, m.intermediate
    # Under bf16 autocast the projections' outputs are bf16 while norms and softmax statistics stay fp32.
    act = 3 if s.bf16 else 4
    weights = m.params * (2 if s.lora and s.bf16 else 4)
    trainable = m.lora_params(s.lora_r) if s.lora else m.params
    state = trainable * (4 + 8)  # fp32 gradients, AdamW's two moments
    if s.lora:
        state += trainable * 4  # the adapters' own fp32 weights
    if s.processes > 1:
        state += trainable * 4  # DDP's gradient buckets
    if s.bf16 and not s.lora:
        weights += m.params * 2  # autocast's cached bf16 copies of the fp32 weights
    fixed = weights + state + _RUNTIME["cuda" if s.device == "cuda" else "cpu"]

    lora_per_token_layer = (6 * h + 2 * q + i + 7 * s.lora_r) if s.lora else 0
    per_token_layer = 6 * h + 4 * q + 4 * i + lora_per_token_layer
    if "flash" in s.attention:
        mask_per_layer = 0.0
    elif s.attention == "eager":
        mask_per_layer = 2.0 * m.heads * L * L * act  # scores and probabilities, per head
    else:
        mask_per_layer = 4.0 * L * L  # sdpa's float copy of the boolean block mask
    if checkpointing:
        layers = m.layers * L * h * act + L * per_token_layer * act + mask_per_layer
        if s.device != "cuda":
            # The checkpointed forward frees the adapters' temporaries of each layer, but between the layer
            # inputs it keeps, glibc's heap does not give them back: on CPU they cost as if all were kept.
            layers += m.layers * L * lora_per_token_layer * act
    else:
        layers = m.layers * (L * per_token_layer * act + mask_per_layer)
    logits = 5 * L * m.vocab * 4 + (L * m.vocab * 2 if s.bf16 else 0)  # + the bf16 logits before .float()
    per_row = layers + logits + L * L  # + the boolean mask itself
    if s.device != "cuda":
        fixed, per_row = fixed * _CPU_ALLOCATOR, per_row * _CPU_ALLOCATOR * (_CPU_LORA if s.lora else 1.0)
    return Estimate(fixed=fixed, per_row=per_row, rows=rows)


def available(device: str) -> tuple[float, str]:
    """Bytes this process may use and where the number came from; ``CODESTILL_MEMORY_GB`` overrides it.

    Under a launcher every process must pick the same batch shape (or DDP would wait forever for the one
    that took fewer steps), so the processes agree on the smallest of their numbers.
    """
    override = os.environ.get(MEMORY_ENV, "").strip()
    if override:
        try:
            return float(override) * GB, f"given by {MEMORY_ENV}"
        except ValueError:
            from codestill.errors import TrainingError

            raise TrainingError(f"{MEMORY_ENV}={override!r}: not a number; give the memory in GB, "
                                f"e.g. {MEMORY_ENV}=16, or unset it") from None
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(local_rank)
        found, source = float(free), f"free on the {torch.cuda.get_device_name(local_rank)}"
    else:
        import psutil

        # MemAvailable: free memory plus what the kernel can reclaim (page cache), shared by the local processes.
        local_processes = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1), 1)
        found = float(psutil.virtual_memory().available) / local_processes
        source = "of available RAM" + (f" per process ({local_processes} on this machine)" if local_processes > 1
                                       else "")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        found = _smallest_over_processes(found, cpu=device != "cuda")
    return found, source


def _smallest_over_processes(value: float, *, cpu: bool) -> float:
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    # The Trainer's PartialState, set up later, reuses this process group: the same arguments as
    # TrainingArguments gives it (CPU: gloo; GPU: its 30-minute timeout).
    state = PartialState(cpu=True) if cpu else PartialState(timeout=timedelta(seconds=1800))
    t = torch.tensor([value], dtype=torch.float64, device=state.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return float(t.item())


# The effective batch an automatic micro-batch keeps (with gradient accumulation): the former default batch.
ROWS_PER_STEP = 4
AUTO_BATCH_SIZES = (4, 2, 1)


@dataclass(frozen=True)
class Choice:
    batch_size: int
    grad_accum: int
    gradient_checkpointing: bool

    def text(self) -> str:
        return (f"batch {self.batch_size} x grad-accum {self.grad_accum}, gradient checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}")


@dataclass(frozen=True)
class MemoryPlan:
    """What was chosen and why; ``estimate_gb`` is None when the student's shape could not be read."""

    choice: Choice
    estimate_gb: float | None
    available_gb: float | None
    source: str
    reason: str

    def line(self) -> str:
        return f"memory: {self.choice.text()} ({self.reason})"

    def report(self) -> dict[str, Any]:
        return {"batch_size": self.choice.batch_size, "grad_accum": self.choice.grad_accum,
                "gradient_checkpointing": self.choice.gradient_checkpointing,
                "estimate_gb": self.estimate_gb, "available_gb": self.available_gb, "available_from": self.source,
                "reason": self.reason}


def _gb(n: float) -> float:
    return round(n / GB, 1)


def plan(setup: Setup | None, avail: tuple[float, str] | None, *, batch_size: int | None, grad_accum: int | None,
         checkpointing: bool | None, default_checkpointing: bool) -> MemoryPlan:
    """The first setting, in order of preference, whose estimate fits ``avail`` less the margin.

    Preference: the largest micro-batch (4, 2, 1), and within one, checkpointing off before on (it recomputes
    the forward pass, ~1/3 more work). Values given are kept. When nothing fits with the margin, the smallest
    setting is taken if it fits without; when not even that fits, the run is refused (a TrainingError naming the
    estimate and the fixes). Without a ``setup`` (the student's shape unreadable) the former defaults are kept.
    """
    sizes = (batch_size,) if batch_size is not None else AUTO_BATCH_SIZES
    ckpts = (checkpointing,) if checkpointing is not None else (False, True)

    def choice(b: int, c: bool) -> Choice:
        accum = grad_accum if grad_accum is not None else (
            max(1, ROWS_PER_STEP // b) if batch_size is None else 1)
        return Choice(b, accum, c)

    if setup is None or avail is None:
        c = choice(sizes[0], checkpointing if checkpointing is not None else default_checkpointing)
        return MemoryPlan(c, None, None, "", "no estimate: the student's config.json could not be read")
    budget, source = avail
    candidates = [(choice(b, c), estimate(setup, b, c).total) for b in sizes for c in ckpts]
    at = f"at max_length {setup.length}"
    for i, (c, need) in enumerate(candidates):
        if need <= budget * (1 - MARGIN):
            why = f"estimated peak {_gb(need)} GB {at}, {_gb(budget)} GB {source}"
            if i:
                first, first_need = candidates[0]
                why += f"; {first.text()} would need about {_gb(first_need)} GB"
            return MemoryPlan(c, _gb(need), _gb(budget), source, why)
    c, need = candidates[-1]
    if need <= budget:
        return MemoryPlan(c, _gb(need), _gb(budget), source,
                          f"estimated peak {_gb(need)} GB {at}, {_gb(budget)} GB {source}: a tight fit")
    from codestill.errors import TrainingError

    fixes = ["lower --max-length"]
    if not setup.lora:
        fixes.append("use --lora")
    if c.batch_size > 1:
        fixes.append("lower --batch-size")
    if not c.gradient_checkpointing:
        fixes.append("turn on --gradient-checkpointing")
    setting = c.text() if (batch_size, checkpointing) != (None, None) else f"even {c.text()}"
    fix = fixes[0] if len(fixes) == 1 else f"{', '.join(fixes[:-1])} or {fixes[-1]}"
    raise TrainingError(f"the run needs about {_gb(need)} GB {at} ({setting}), this machine has {_gb(budget)} GB "
                        f"{source}: {fix} (or set {MEMORY_ENV} to the GB it may use, if the estimate is wrong)")
