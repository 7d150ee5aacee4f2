"""Loading the student: any causal LM from a local directory or, only when named, the Hugging Face hub."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from codestill.errors import TrainingError
from training._data import IGNORE, PackedCollator


def is_local(student: str) -> bool:
    """A student is a local directory when it exists or is written as a path; otherwise it is a hub id."""
    return Path(student).expanduser().exists() or student.startswith((".", "/", "~"))


def _source(student: str) -> tuple[str, bool]:
    if not is_local(student):
        return student, False
    path = Path(student).expanduser()
    if not path.is_dir():
        what = "not a directory" if path.exists() else "no such directory"
        raise TrainingError(f"student {student}: {what}; give a model directory saved with "
                            "save_pretrained, or a Hugging Face hub id such as Qwen/Qwen2.5-Coder-0.5B-Instruct")
    if not (path / "config.json").exists():
        raise TrainingError(f"student {student}: not a model directory (no config.json); give a directory saved "
                            "with save_pretrained, or a Hugging Face hub id")
    return str(path), True


def _load_error(student: str, local: bool, e: Exception) -> TrainingError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    if local:
        return TrainingError(f"student {student}: cannot load it as a causal LM ({first}); give a directory "
                             "holding a causal language model and its tokenizer")
    return TrainingError(f"student {student}: cannot load it from the Hugging Face hub ({first}); check the "
                         "name and the network, or download it once and give the local directory")


def default_attn_implementation(bf16: bool) -> str:
    """flash-attention 2 where it can run (CUDA, half precision, installed): its varlen kernel attends only
    within each packed sample instead of masking a full row; sdpa with a block-diagonal mask otherwise."""
    if bf16 and torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_tokenizer(student: str) -> Any:
    from transformers import AutoTokenizer

    name, local = _source(student)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
    except (OSError, ValueError) as e:
        raise _load_error(student, local, e) from None
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingError(f"student {student}: its tokenizer has no chat template; give an instruct/chat "
                            "model, or set tokenizer.chat_template and save it with the model")
    if tokenizer.pad_token_id is None:
        # Padding is never a target and never attended to, so any id works; EOS is what most recipes use.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(student: str, *, attn_implementation: str | None, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    name, local = _source(student)

    def load(impl: str) -> Any:
        return AutoModelForCausalLM.from_pretrained(name, local_files_only=local, dtype=dtype,
                                                    attn_implementation=impl)

    try:
        try:
            return load(attn_implementation or "sdpa")
        except ValueError:
            if attn_implementation is not None:
                raise
            return load("eager")  # an architecture without sdpa / flash-attention support
    except (OSError, ValueError) as e:
        raise _load_error(student, local, e) from None


def check_packing_isolation(model: Any, device: torch.device, bf16: bool, collator: PackedCollator) -> None:
    """Refuse a model whose attention leaks across packed samples (its code ignores packed position_ids).

    A micro-batch shaped like the training ones (two rows, the first holding two samples) goes through the
    training collator and the model, on the training device and precision (flash-attention runs only
    there); every sample's logits must match those of the sample run alone, within that precision.
    """
    vocab = model.get_input_embeddings().num_embeddings
    gen = torch.Generator().manual_seed(0)
    samples = [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in (5, 3, 8)]

    def row(*parts: list[int]) -> dict[str, list[int]]:
        return {"input_ids": [t for p in parts for t in p], "labels": [IGNORE] * sum(map(len, parts)),
                "position_ids": [i for p in parts for i in range(len(p))], "task_ids": [0] * sum(map(len, parts))}

    rows = [row(samples[0], samples[1]), row(samples[2])]
    batch = collator(rows)
    was_training = model.training
    model.to(device).eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            packed = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                           use_cache=False).logits.float()
            alone = [model(input_ids=torch.tensor([s], device=device), use_cache=False).logits[0].float()
                     for s in samples]
    finally:
        model.train(was_training)
    for (r, offset, n), ref in zip(collator.spans(rows), alone, strict=True):
        tolerance = (5e-2 if bf16 else 1e-3) * max(ref.abs().max().item(), 1.0)
        if (packed[r, offset:offset + n] - ref).abs().max().item() > tolerance:
            raise TrainingError("the student's attention does not keep packed samples apart (it ignores the "
                                "restarting position_ids); train it with --no-packing")


def add_lora(model: Any, *, r: int, alpha: int, dropout: float) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules="all-linear")
    return get_peft_model(model, config)
