"""``train(TrainConfig) -> TrainResult``: supervised fine-tuning of a student on codestill SFT records.

Records -> chat template -> assistant-only labels -> length filter -> packed rows -> ``CodestillTrainer``
(the (1-λ)·L_code + λ·L_plan loss) -> checkpoints, metrics, loss curve, final model. Launched with
``torchrun`` or ``accelerate launch`` the same code runs data-parallel: the Trainer reads the launcher's
environment, every process tokenises the same records the same way, only the main one writes files.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from codestill.errors import TrainingError, first_problem
from codestill.records import read_jsonl, write_json
from codestill.schemas import SFTRecord
from training import _memory, _rundir
from training._data import (
    TASKS,
    LengthReport,
    PackedCollator,
    PackedDataset,
    filter_by_length,
    tokenize_records,
)
from training._memory import MemoryPlan
from training._trained_on import TRAINING_DATA_FILE, TrainedOn, trained_on, write_trained_on

# Changing one of these between a crash and its resume would mix two different runs in one directory.
RUN_IDENTITY = ("data", "student", "max_length", "packing", "plan_weight", "seed", "eval_fraction",
                "batch_size", "grad_accum", "lora", "lora_r", "lora_alpha", "tag_weights")
# Identity settings added after runs were recorded without them: such a run is read as having the default.
IDENTITY_DEFAULTS: dict[str, Any] = {"tag_weights": {}}


class TrainConfig(BaseModel):
    """Everything a run depends on; recorded as ``DIR/config.json``. ``None`` means "decide for this machine"."""

    model_config = ConfigDict(extra="forbid")

    data: Path = Field(description="SFT records (JSONL of SFTRecord), code and plan tasks mixed.")
    student: str = Field(min_length=1, description="A local model directory, or a hub id (downloads it).")
    out: Path = Field(description="Output directory: checkpoints, metrics, final model.")
    plan_weight: float = Field(default=0.5, ge=0.0, le=1.0, description="λ in (1-λ)·L_code + λ·L_plan.")
    tag_weights: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=dict, description="Loss weight of records by tag, e.g. {'plan:backward': 0.5}: within "
                                          "its task a record's tokens count this much (a tag not named: 1).")
    max_length: int = Field(default=2048, ge=8, description="Row length; longer records are dropped, not truncated.")
    packing: bool = True
    epochs: float = Field(default=3.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0, description="Optimizer steps; overrides epochs.")
    batch_size: int | None = Field(default=None, ge=1, description="Rows per device per micro-batch. Default: the "
                                   "largest of 4, 2, 1 that fits in this machine's memory.")
    grad_accum: int | None = Field(default=None, ge=1, description="Micro-batches per optimizer step. Default: 4 rows per "
                                   "step with an automatic batch size, else 1.")
    learning_rate: float | None = Field(default=None, gt=0, description="Default 2e-5, or 2e-4 with LoRA.")
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, ge=0.0)
    eval_fraction: float = Field(default=0.05, ge=0.0, lt=1.0, description="Records held out for the eval loss.")
    eval_steps: int | None = Field(default=None, gt=0, description="Default: every save_steps (or 200).")
    save_steps: int | None = Field(default=200, gt=0, description="Checkpoint every N steps; None: no checkpoints.")
    save_total_limit: int | None = Field(default=2, gt=0)
    logging_steps: int = Field(default=10, gt=0)
    seed: int = 0
    bf16: bool | None = Field(default=None, description="Default: on where CUDA supports bf16.")
    gradient_checkpointing: bool | None = Field(default=None, description="Default: on only when the run would not fit "
                                                "in memory without it.")
    attn_implementation: str | None = Field(default=None, description="Default: flash_attention_2 if installed, else sdpa.")
    lora: bool = False
    lora_r: int = Field(default=16, gt=0)
    lora_alpha: int = Field(default=32, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    resume: bool = Field(default=True, description="Continue from the last checkpoint in out; False starts over.")
    progress: bool = Field(default=True, description="Show a progress bar on stderr.")

    _memory: MemoryPlan | None = PrivateAttr(None)

    @property
    def memory(self) -> MemoryPlan | None:
        """How ``resolved()`` chose the batch shape and checkpointing, with its memory estimate."""
        return self._memory

    def resolved(self) -> TrainConfig:
        """Auto values decided for this machine, paths made absolute.

        The batch shape and gradient checkpointing are chosen to fit in memory (``training._memory``); a run
        that cannot fit is refused here, before anything is written. A resumed run keeps the batch shape it
        was recorded with (both are part of its identity); only checkpointing is chosen again.
        """
        import torch

        from training._student import default_attn_implementation, is_local

        cuda = torch.cuda.is_available()
        local = is_local(self.student)
        student = str(Path(self.student).expanduser().resolve()) if local else self.student
        out = self.out.expanduser().resolve()
        bf16 = self.bf16 if self.bf16 is not None else cuda and torch.cuda.is_bf16_supported()
        attention = self.attn_implementation or default_attn_implementation(bf16)
        batch_size, grad_accum = self.batch_size, self.grad_accum
        if self.resume and (batch_size is None or grad_accum is None):
            recorded = _rundir.recorded_config(out) or {}
            if isinstance(recorded.get("batch_size"), int) and isinstance(recorded.get("grad_accum"), int):
                batch_size = batch_size or recorded["batch_size"]
                grad_accum = grad_accum or recorded["grad_accum"]
        shape = _memory.model_shape(student, local)
        setup = None if shape is None else _memory.Setup(
            shape=shape, length=self.max_length, lora=self.lora, lora_r=self.lora_r, bf16=bool(bf16),
            device="cuda" if cuda else "cpu", attention=attention,
            processes=int(os.environ.get("WORLD_SIZE", "1") or 1))
        memory = _memory.plan(setup, _memory.available("cuda" if cuda else "cpu") if setup else None,
                              batch_size=batch_size, grad_accum=grad_accum,
                              checkpointing=self.gradient_checkpointing, default_checkpointing=cuda)
        resolved = self.model_copy(update={
            "data": self.data.expanduser().resolve(), "out": out, "student": student,
            "learning_rate": self.learning_rate or (2e-4 if self.lora else 2e-5),
            "bf16": bf16, "batch_size": memory.choice.batch_size, "grad_accum": memory.choice.grad_accum,
            "gradient_checkpointing": memory.choice.gradient_checkpointing,
            "attn_implementation": attention,
            "eval_steps": self.eval_steps or self.save_steps or 200,
        })
        resolved._memory = memory
        return resolved


class TrainResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: Path
    model_dir: Path
    global_step: int
    resumed_from_step: int | None
    train_loss: float | None = Field(description="Mean logged training loss of this run's steps.")
    eval_loss: float | None
    train_tokens: int = Field(description="Non-padding tokens trained on in this run (all processes).")
    train_runtime_s: float
    tokens_per_s: float
    flops_per_token: float | None = Field(description="Training FLOPs per token (training._flops); None when the "
                                                      "student's shape could not be read.")
    mfu: float | None = Field(description="Model FLOPs utilisation: tokens/s x FLOPs per token / the GPUs' peak "
                                          "dense bf16 FLOP/s; None on a CPU or an unknown GPU.")
    task_weights: dict[str, float]
    data: list[LengthReport]


def _read_records(path: Path) -> list[SFTRecord]:
    records = list(read_jsonl(path, SFTRecord))
    if not records:
        raise TrainingError(f"{path}: no SFT records in it; export some with codestill's SFT export first")
    return records


def _split(records: Sequence[SFTRecord], fraction: float, seed: int) -> tuple[list[SFTRecord], list[SFTRecord]]:
    """A seeded shuffle, the same in every process and after every resume."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = min(max(round(len(records) * fraction), 1 if fraction > 0 else 0), len(records) - 1)
    return [records[i] for i in order[n_eval:]], [records[i] for i in order[:n_eval]]


def _training_args(c: TrainConfig, has_eval: bool) -> Any:
    import torch
    from transformers import TrainingArguments

    # Newer transformers call gradient checkpointing activation checkpointing; the old name warns.
    ckpt = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"
    assert c.batch_size is not None and c.grad_accum is not None and c.learning_rate is not None \
        and c.bf16 is not None, "TrainConfig.resolved() fills these in"
    return TrainingArguments(
        output_dir=str(c.out), per_device_train_batch_size=c.batch_size, per_device_eval_batch_size=c.batch_size,
        gradient_accumulation_steps=c.grad_accum, num_train_epochs=c.epochs, max_steps=c.max_steps or -1,
        learning_rate=c.learning_rate, lr_scheduler_type=c.lr_scheduler, warmup_steps=c.warmup_ratio,
        weight_decay=c.weight_decay, max_grad_norm=c.max_grad_norm, logging_steps=c.logging_steps,
        logging_first_step=True, eval_strategy="steps" if has_eval else "no", eval_steps=c.eval_steps,
        save_strategy="steps" if c.save_steps else "no", save_steps=c.save_steps or 500,
        save_total_limit=c.save_total_limit, seed=c.seed, data_seed=c.seed, bf16=c.bf16,
        **{ckpt: c.gradient_checkpointing, f"{ckpt}_kwargs": {"use_reentrant": False}},
        report_to="none", disable_tqdm=True, remove_unused_columns=False, prediction_loss_only=True,
        ddp_find_unused_parameters=False, dataloader_pin_memory=torch.cuda.is_available(),
        # Said outright on a machine without an accelerator: it is what lets torchrun start CPU (gloo) processes.
        use_cpu=not torch.accelerator.is_available(),
    )


def _load_student(c: TrainConfig, device: Any, collator: PackedCollator) -> Any:
    import torch

    from training._student import add_lora, check_packing_isolation, load_model

    # Full fine-tuning keeps fp32 master weights (bf16 runs as autocast); LoRA may keep the frozen base in bf16.
    dtype = torch.bfloat16 if c.lora and c.bf16 else torch.float32
    model = load_model(c.student, attn_implementation=c.attn_implementation, dtype=dtype)
    if c.packing:
        check_packing_isolation(model, device, bool(c.bf16), collator)
    return add_lora(model, r=c.lora_r, alpha=c.lora_alpha, dropout=c.lora_dropout) if c.lora else model


def _save_final(trainer: Any, tokenizer: Any, c: TrainConfig) -> Path:
    tmp = c.out / ".model.tmp"
    main = trainer.is_world_process_zero()
    if main and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    if c.lora:  # a merged model loads like any causal LM (evaluation, serving); adapters stay in checkpoints
        if main:
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))  # every process takes part (sharded setups gather), the main one writes
    trainer.accelerator.wait_for_everyone()
    if not main:
        return c.out / _rundir.MODEL_DIR
    # What the model was trained on travels with it (a copied model keeps it): codestill eval warns with it.
    shutil.copyfile(c.out / TRAINING_DATA_FILE, tmp / TRAINING_DATA_FILE)
    return _rundir.publish_model(tmp, c.out)


def _prepare_out(c: TrainConfig, recorded: dict[str, Any], data_report: dict[str, Any], data: TrainedOn) -> None:
    try:
        c.out.mkdir(parents=True, exist_ok=True)
        if not c.resume:
            _rundir.start_over(c.out)
        _rundir.drop_incomplete_checkpoints(c.out)
        write_json(c.out / _rundir.CONFIG_FILE, recorded)
        write_json(c.out / "data_report.json", data_report)
        write_trained_on(c.out, data)
    except OSError as e:
        raise TrainingError(f"--out {c.out}: cannot write there ({e.strerror or e}); give a writable directory"
                            ) from None


def _flops(c: TrainConfig, args: Any, lengths: Iterable[int], tokens_per_s: float
           ) -> tuple[float | None, float | None]:
    """FLOPs per token and, on a GPU with a known peak, the MFU of the run (``training._flops``)."""
    import torch

    from training._flops import attended_length, flops_per_token, mfu, peak_flops
    from training._student import is_local

    shape = _memory.model_shape(c.student, is_local(c.student))
    if shape is None:
        return None, None
    per_token = flops_per_token(shape, attended_length(lengths), shape.lora_params(c.lora_r) if c.lora else None)
    if args.device.type != "cuda":
        return per_token, None
    return per_token, mfu(tokens_per_s, per_token, peak_flops(torch.cuda.get_device_name(args.device)),
                          args.world_size)


def _check_transformers() -> None:
    import transformers

    # Older Trainers rescale a custom loss for gradient accumulation on their own: the λ loss would come out
    # divided by the accumulation steps, silently. Refuse them rather than train at the wrong scale.
    if not hasattr(transformers.Trainer, "loss_is_scaled_for_ga"):
        raise TrainingError(f"codestill's trainer needs a newer transformers (found {transformers.__version__}); "
                            "run: pip install -U 'transformers>=5'")


def train(config: TrainConfig, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train ``config.student`` on ``config.data``; extra ``callbacks`` are transformers TrainerCallbacks."""
    # Everything a user can get wrong is checked before the first file is written: a refused run leaves
    # nothing behind (and an existing run's directory untouched). Memory is the first such check. The
    # settings, the output directory and the data come before transformers' Trainer is imported (3 s), so
    # a mistyped path is told at once.
    c = config.resolved()
    recorded = c.model_dump(mode="json")
    _rundir.check_out_dir(c.out, recorded, RUN_IDENTITY, resume=c.resume, defaults=IDENTITY_DEFAULTS)
    records = _read_records(c.data)
    data = trained_on(c.data, records)

    from transformers.trainer_callback import PrinterCallback

    from training._callbacks import LOSS_CURVE_FILE, METRICS_FILE, MetricsFile, RichProgress, plot_loss_curve
    from training._loss import task_weights
    from training._student import load_tokenizer
    from training._trainer import CodestillTrainer

    _check_transformers()
    tokenizer = load_tokenizer(c.student)
    train_records, eval_records = _split(records, c.eval_fraction, c.seed)
    train_examples, train_report = filter_by_length(tokenize_records(train_records, tokenizer, c.tag_weights),
                                                    c.max_length)
    eval_examples, eval_report = filter_by_length(tokenize_records(eval_records, tokenizer, c.tag_weights),
                                                  c.max_length, "eval")
    if not train_examples:
        raise TrainingError(f"{c.data}: no training record fits in max_length={c.max_length} tokens "
                            f"(longest dropped: {train_report.longest_dropped}); raise --max-length")
    weights = task_weights(c.plan_weight, {TASKS[e.task] for e in train_examples})
    try:
        args = _training_args(c, has_eval=bool(eval_examples))
    except ValueError as e:
        raise TrainingError(f"invalid training setting: {e}") from None
    # flash-attention finds packed samples only in a one-row batch: its micro-batches are flattened.
    collator = PackedCollator(tokenizer.pad_token_id, flatten="flash" in str(c.attn_implementation))
    model = _load_student(c, args.device, collator)

    progress = RichProgress() if c.progress else None
    with args.main_process_first(desc="prepare the output directory"):
        if args.process_index == 0:
            memory = c.memory.report() if c.memory else None
            _prepare_out(c, recorded, {"task_weights": dict(zip(TASKS, weights, strict=True)),
                                       "splits": [train_report.model_dump(), eval_report.model_dump()],
                                       "memory": memory}, data)
            if progress is not None and c.memory is not None:
                progress.console.print(c.memory.line(), highlight=False)
    resume_from = _rundir.last_checkpoint(c.out) if c.resume else None

    trainer = CodestillTrainer(
        model=model, args=args, task_weights=weights,
        train_dataset=PackedDataset(train_examples, c.max_length, c.packing),
        eval_dataset=PackedDataset(eval_examples, c.max_length, c.packing) if eval_examples else None,
        data_collator=collator, processing_class=tokenizer,
        callbacks=[MetricsFile(c.out / METRICS_FILE), *([progress] if progress else []), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the bar and metrics.jsonl show them
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    model_dir = _save_final(trainer, tokenizer, c)

    runtime = float(output.metrics.get("train_runtime", 0.0))
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    tokens_per_s = trainer.real_tokens_seen / runtime if runtime > 0 else 0.0
    per_token, mfu = _flops(c, args, (len(e) for e in train_examples), tokens_per_s)
    result = TrainResult(
        out=c.out, model_dir=model_dir, global_step=trainer.state.global_step,
        resumed_from_step=int(resume_from.name.split("-")[1]) if resume_from else None,
        train_loss=output.training_loss if trainer.state.global_step else None,
        eval_loss=evals[-1] if evals else None, train_tokens=trainer.real_tokens_seen, train_runtime_s=runtime,
        tokens_per_s=tokens_per_s, flops_per_token=per_token, mfu=mfu,
        task_weights=dict(zip(TASKS, weights, strict=True)), data=[train_report, eval_report])
    if trainer.is_world_process_zero():
        plot_loss_curve(c.out / METRICS_FILE, c.out / LOSS_CURVE_FILE)
        write_json(c.out / "train_result.json", result)
    return result


def config_from(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from loose values (the CLI's); invalid ones end as one TrainingError line."""
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as e:
        where, msg = first_problem(e)
        raise TrainingError(f"invalid training setting {where or '(config)'}: {msg}") from None
