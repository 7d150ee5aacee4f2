"""`codestill train`: fine-tune a student on SFT records (code and plan tasks), see training/README.md.

Multi-GPU without a code change: ``torchrun --nproc-per-node 8 "$(command -v codestill)" train ...``
or ``accelerate launch "$(command -v codestill)" train ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codestill.errors import TrainingError


def _tag_weights(pairs: list[str] | None) -> dict[str, str]:
    """["plan:backward=0.5"] -> {"plan:backward": "0.5"}; the TrainConfig checks the numbers."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        tag, eq, weight = pair.rpartition("=")
        if not eq or not tag.strip():
            raise TrainingError(f"--tag-weight {pair!r}: expected TAG=WEIGHT, e.g. --tag-weight plan:backward=0.5")
        out[tag.strip()] = weight.strip()
    return out


def train(
    data: Annotated[Path, typer.Option(help="SFT records (JSONL), code and plan tasks.")],
    student: Annotated[str, typer.Option(help="A local model directory, or a Hugging Face hub id (downloads it).")],
    out: Annotated[Path, typer.Option(help="Output directory: checkpoints, metrics, loss curve, final model.")],
    plan_weight: Annotated[float, typer.Option("--plan-weight", "--lambda",
                                               help="λ in (1-λ)·L_code + λ·L_plan.")] = 0.5,
    tag_weight: Annotated[list[str] | None, typer.Option(
        "--tag-weight", help="TAG=W: records with that tag weigh W within their task's loss, e.g. "
        "--tag-weight plan:backward=0.5 (repeatable; tags come from codestill export).")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per packed row; longer records are dropped.")] = 2048,
    packing: Annotated[bool, typer.Option(help="Pack several records per row.")] = True,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 3.0,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps; overrides --epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Rows per device per micro-batch; default: the largest of 4, 2, 1 that fits in memory.")] = None,
    grad_accum: Annotated[int | None, typer.Option(
        help="Micro-batches per optimizer step; default: 4 rows per step with an automatic batch size, else 1.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate; default 2e-5, 2e-4 with --lora.")] = None,
    eval_fraction: Annotated[float, typer.Option(help="Share of records held out for the eval loss.")] = 0.05,
    eval_steps: Annotated[int | None, typer.Option(help="Evaluate every N steps; default: --save-steps.")] = None,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    logging_steps: Annotated[int, typer.Option(help="Log the loss every N steps.")] = 10,
    seed: Annotated[int, typer.Option(help="Seeds the split, the shuffle and the initialisation.")] = 0,
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16",
                                              help="bf16 autocast; default on where CUDA supports it.")] = None,
    gradient_checkpointing: Annotated[bool | None, typer.Option(
        "--gradient-checkpointing/--no-gradient-checkpointing",
        help="Default: on only when the run would not fit in memory without it.")] = None,
    attn_implementation: Annotated[str | None, typer.Option(
        help="sdpa, eager, flash_attention_2...; default flash_attention_2 when installed, else sdpa.")] = None,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters (peft) instead of all weights.")] = False,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 32,
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", help="Continue from the last checkpoint in --out; --no-resume starts over, "
        "discarding the run there.")] = True,
) -> None:
    """Fine-tune STUDENT on the SFT records in DATA; writes checkpoints and the final model under OUT."""
    from transformers.utils import logging as hf_logging

    from training import config_from
    from training import train as run_training

    hf_logging.disable_progress_bar()  # per-file load/save bars; the run has its own bar

    config = config_from({
        "data": data, "student": student, "out": out, "plan_weight": plan_weight,
        "tag_weights": _tag_weights(tag_weight), "max_length": max_length,
        "packing": packing, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
        "grad_accum": grad_accum, "learning_rate": lr, "eval_fraction": eval_fraction, "eval_steps": eval_steps,
        "save_steps": save_steps, "logging_steps": logging_steps, "seed": seed, "bf16": bf16,
        "gradient_checkpointing": gradient_checkpointing, "attn_implementation": attn_implementation,
        "lora": lora, "lora_r": lora_r, "lora_alpha": lora_alpha, "resume": resume,
    })
    result = run_training(config)
    from accelerate import PartialState  # loaded with the Trainer by now; a refused run never needs it

    if not PartialState().is_main_process:  # under torchrun every process gets here; one summary is enough
        return
    report = result.data[0]
    console = Console()
    resumed = f", resumed from step {result.resumed_from_step}" if result.resumed_from_step is not None else ""
    mfu = f" (MFU {result.mfu:.1%})" if result.mfu is not None else ""
    console.print(f"trained to step {result.global_step}{resumed}: {result.train_tokens} tokens, "
                  f"{result.tokens_per_s:.0f} tokens/s{mfu}; records kept {report.kept}, dropped {report.dropped} "
                  f"(see {result.out / 'data_report.json'})", highlight=False)
    eval_text = f"eval loss {result.eval_loss:.4f}, " if result.eval_loss is not None else ""
    console.print(f"{eval_text}model: {result.model_dir}", highlight=False)
