"""Training throughput: codestill's trainer against a plain transformers ``Trainer``, side by side.

Both train the same model (built from a config, weights from the same seed) on the same SFT records for
the same number of epochs (the preset's: 1 on CPU, 3 on a GPU):

* codestill: ``training.train`` — records packed into rows of ``--max-length`` (first-fit decreasing,
  positions restarting per record, attention kept inside each record), the per-task λ loss, bf16 autocast
  where the GPU supports it.
* baseline: ``transformers.Trainer`` with its defaults (fp32) on the same tokenised records, one record
  per row, padded to the longest record of each batch (``DataCollatorForSeq2Seq``); the batch holds as
  many records as fit, on average, in codestill's rows, so both take about the same tokens per step.
  ``--baseline-bf16`` gives it bf16 too, to see what packing alone buys.

Data: every bundled MBPP / HumanEval problem twice, as a code record (instruction -> reference in a
```python fence) and as a plan record (instruction -> a short plan read off the reference's AST). The
tokenizer is a byte-level BPE trained on those records on the spot; nothing is downloaded.

tokens/s counts real tokens only (no padding) on both sides, over the Trainer's own ``train_runtime``.
``mfu`` (GPU only) is 6 * parameters * tokens / time / peak bf16 FLOP/s of the device.

    .venv/bin/python bench/train_throughput.py                  # CUDA: ~0.5B Qwen2-like model, bf16;
                                                                # else a 3M Llama-like one, one thread
    .venv/bin/python bench/train_throughput.py --preset cpu --layers 2 --records 400   # smaller still

Every size is a flag (``--hidden-size``, ``--layers``, ``--max-length``, ``--rows``, ``--epochs``...;
``--help`` lists them) overriding the preset, which is ``gpu`` when CUDA is available and ``cpu`` otherwise.

Target: ratio >= 1.5 on the same hardware. The last line printed is machine-readable::

    train: tokens_per_s=<float> baseline_tokens_per_s=<float> ratio=<float> mfu=<float or na>
"""

from __future__ import annotations

import argparse
import ast
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from _progress import progress_bar
from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback

from codestill.data import BankProblem, load_bank
from codestill.pysrc import def_line, parse_quietly
from codestill.records import write_jsonl
from codestill.schemas import ChatMessage, Provenance, SFTRecord

TARGET_RATIO = 1.5
SYSTEM = "You are a careful Python programmer."
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Dense bf16 peak FLOP/s by device name (SXM parts; the PCIe H100 is lower, matched first).
PEAK_BF16 = (("H100 PCIe", 756e12), ("H200", 989e12), ("H100", 989e12), ("A100", 312e12))
PRESETS: dict[str, dict[str, Any]] = {
    # A small Llama-like model on every record, one thread: both sides in a few minutes on a 2-core CPU.
    "cpu": {"arch": "llama", "vocab": 4096, "hidden_size": 192, "intermediate_size": 512, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 4, "max_length": 512, "rows": 4, "records": None,
            "epochs": 1, "threads": 1, "checkpointing": False},
    # ~0.5B parameters, Qwen2-like (GQA, untied embeddings); every record, 3 epochs for a steady measurement.
    # Gradient checkpointing on both sides: the fp32 baseline's padded batches would not fit without it.
    "gpu": {"arch": "qwen2", "vocab": 32000, "hidden_size": 1024, "intermediate_size": 5120,
            "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 4, "max_length": 1024,
            "rows": 4, "records": None, "epochs": 3, "threads": None, "checkpointing": True},
}

console = Console()


def plan_for(p: BankProblem) -> str:
    """A short plan read off the reference: the def line, then one step per top-level statement."""
    tree = parse_quietly(p.reference)
    fns = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == p.entry_point]
    if not fns:
        return f"1. Define {p.entry_point}.\n2. Compute the result.\n3. Return it."
    steps = [f"Define `{def_line(fns[0])}`."]
    verbs = {ast.For: "Loop", ast.While: "Repeat", ast.If: "Check", ast.Return: "Return", ast.Assign: "Compute",
             ast.AugAssign: "Update", ast.Try: "Try", ast.With: "Open"}
    for node in fns[0].body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        head = ast.unparse(node).splitlines()[0][:90]
        steps.append(f"{verbs.get(type(node), 'Do')}: `{head}`.")
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))


def bank_records(n: int | None) -> list[SFTRecord]:
    """Code and plan records of every problem, or a seeded sample of ``n`` of them (keeps the length mix)."""
    out: list[SFTRecord] = []
    for p in load_bank():
        prov = Provenance(task_id=p.id, trajectory_id=p.id, source=p.source)
        for task, prompt, answer in (
                ("code", p.instruction, f"```python\n{p.reference.strip()}\n```"),
                ("plan", f"Write a step-by-step plan, no code, for this task:\n{p.instruction}", plan_for(p))):
            out.append(SFTRecord(id=f"{p.id}/{task}", task=task, provenance=prov, messages=(  # type: ignore[arg-type]
                ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=prompt),
                ChatMessage(role="assistant", content=answer))))
    return random.Random(0).sample(out, n) if n is not None and n < len(out) else out


def build_student(records: list[SFTRecord], preset: dict[str, Any], out: Path) -> int:
    """A tokenizer trained on the records and a model from a config, saved to ``out``; returns the parameters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    specials = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [m.content for r in records for m in r.messages]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=preset["vocab"], special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    shape = {k: preset[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                    "num_attention_heads", "num_key_value_heads")}
    # The model's vocabulary is the preset's (a real model's embedding cost), whatever the BPE reached.
    common = {"vocab_size": max(preset["vocab"], len(fast)), "max_position_embeddings": preset["max_length"],
              "eos_token_id": fast.eos_token_id, "pad_token_id": fast.pad_token_id, "tie_word_embeddings": False}
    torch.manual_seed(0)
    if preset["arch"] == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shape, **common))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape, **common))
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return model.num_parameters()


class BenchProgress(TrainerCallback):
    """The benchmark's progress bar (bench/_progress.py), one per side."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress = progress_bar(console, "step")
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=state.max_steps)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.update(self.task, completed=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.stop()


def run_codestill(data: Path, student: Path, out: Path, preset: dict[str, Any]) -> tuple[float, int, bool]:
    from training import TrainConfig, train

    config = TrainConfig(data=data, student=str(student), out=out, max_length=preset["max_length"],
                         epochs=preset["epochs"],
                         batch_size=preset["rows"], eval_fraction=0.0, save_steps=None, logging_steps=10_000,
                         gradient_checkpointing=preset["checkpointing"], progress=False, resume=False)
    result = train(config, callbacks=[BenchProgress("codestill")])
    return result.train_runtime_s, result.train_tokens, bool(config.resolved().bf16)


class CountingCollator:
    """The baseline's collator, counting the token slots (padding included) it hands to the model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.slots = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        self.slots += batch["input_ids"].numel()
        return batch


class _Rows(torch.utils.data.Dataset):
    """Rows as the map-style dataset Trainer takes."""

    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def run_baseline(records: list[SFTRecord], student: Path, out: Path, preset: dict[str, Any], bf16: bool
                 ) -> tuple[float, int, int, int]:
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )
    from transformers.trainer_callback import PrinterCallback

    from training import filter_by_length, tokenize_records

    tokenizer = AutoTokenizer.from_pretrained(student, local_files_only=True)
    examples, _ = filter_by_length(tokenize_records(records, tokenizer), preset["max_length"])
    dataset = _Rows([{"input_ids": list(e.input_ids), "attention_mask": [1] * len(e), "labels": list(e.labels)}
                     for e in examples])
    tokens = sum(len(e) for e in examples)
    batch = max(1, round(preset["rows"] * preset["max_length"] / (tokens / len(examples))))
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch,
                             num_train_epochs=preset["epochs"],
                             learning_rate=2e-5, warmup_steps=0.03, lr_scheduler_type="cosine", bf16=bf16,
                             save_strategy="no", logging_steps=10_000, report_to="none", disable_tqdm=True,
                             use_cpu=not torch.accelerator.is_available(), seed=0,
                             activation_checkpointing=preset["checkpointing"],
                             activation_checkpointing_kwargs={"use_reentrant": False})
    model = AutoModelForCausalLM.from_pretrained(student, local_files_only=True, dtype=torch.float32,
                                                 attn_implementation="sdpa")
    collator = CountingCollator(DataCollatorForSeq2Seq(tokenizer, padding=True, pad_to_multiple_of=8))
    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[BenchProgress("baseline")],
                      data_collator=collator)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict
    metrics = trainer.train().metrics
    return float(metrics["train_runtime"]), tokens * preset["epochs"], batch, collator.slots


def peak_flops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


# Flags that override one preset value each: (flag, preset key, type, help).
OVERRIDES: tuple[tuple[str, str, type, str], ...] = (
    ("--hidden-size", "hidden_size", int, "model width"),
    ("--intermediate-size", "intermediate_size", int, "MLP width"),
    ("--layers", "num_hidden_layers", int, "decoder layers"),
    ("--heads", "num_attention_heads", int, "attention heads"),
    ("--kv-heads", "num_key_value_heads", int, "key/value heads (GQA)"),
    ("--vocab", "vocab", int, "vocabulary size of the model (and the BPE's target)"),
    ("--max-length", "max_length", int, "row length of codestill's packing; longer records are dropped"),
    ("--rows", "rows", int, "codestill's rows per batch (the baseline's batch holds as many tokens)"),
    ("--epochs", "epochs", int, "passes over the records"),
    ("--records", "records", int, "a seeded sample of N records (the presets: every one)"),
    ("--threads", "threads", int, "CPU threads for torch (the cpu preset: 1)"),
)


def parse_args() -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = argparse.ArgumentParser(description="codestill trainer vs plain transformers Trainer: tokens/s.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="model and batch sizes; default: gpu when CUDA is available, else cpu")
    for flag, _, kind, text in OVERRIDES:
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default: the preset's)")
    parser.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="gradient checkpointing on both sides (default: the preset's)")
    parser.add_argument("--baseline-bf16", action="store_true", help="give the baseline bf16 too")
    a = parser.parse_args()
    preset = dict(PRESETS[a.preset or ("gpu" if torch.cuda.is_available() else "cpu")])
    for flag, key, _, _ in OVERRIDES:
        value = getattr(a, flag[2:].replace("-", "_"))
        if value is not None:
            preset[key] = value
    if a.checkpointing is not None:
        preset["checkpointing"] = a.checkpointing
    return a, preset


def main() -> None:
    a, preset = parse_args()
    if preset["threads"]:
        # One thread by default on CPU: on a small shared machine, OpenMP threads that wait on a busy core at
        # every barrier make timings swing tenfold; both sides get the same threads either way.
        torch.set_num_threads(preset["threads"])
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    records = bank_records(preset["records"])
    with tempfile.TemporaryDirectory(prefix="codestill-bench-") as tmp:
        root = Path(tmp)
        write_jsonl(root / "sft.jsonl", records)
        with console.status("training a tokenizer and building the model"):
            params = build_student(records, preset, root / "student")
        ours_s, ours_tokens, ours_bf16 = run_codestill(root / "sft.jsonl", root / "student", root / "ours", preset)
        base_bf16 = a.baseline_bf16 and ours_bf16
        base_s, base_tokens, base_batch, base_slots = run_baseline(records, root / "student", root / "base", preset,
                                                                   base_bf16)

    ours, base = ours_tokens / ours_s, base_tokens / base_s
    peak = peak_flops()
    mfu = 6 * params * ours_tokens / ours_s / peak if peak else None
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    table = Table(title=f"train throughput: {len(records)} records, {params / 1e6:.1f}M parameters, {device}")
    for col in ("side", "batching", "precision", "real tokens", "train s", "tokens/s"):
        table.add_column(col, justify="right" if col in ("real tokens", "train s", "tokens/s") else "left")
    table.add_row("codestill", f"packed, {preset['rows']} rows x {preset['max_length']}", "bf16" if ours_bf16
                  else "fp32", str(ours_tokens), f"{ours_s:.1f}", f"{ours:.0f}")
    table.add_row("baseline", f"padded, {base_batch} records", "bf16" if base_bf16 else "fp32", str(base_tokens),
                  f"{base_s:.1f}", f"{base:.0f}")
    console.print(table)
    if base_slots:
        console.print(f"baseline: {1 - base_tokens / base_slots:.0%} of the token slots it computed were padding")
    if ours_tokens != base_tokens:
        console.print(f"[yellow]note:[/] the sides trained on different token counts ({ours_tokens} vs {base_tokens})")
    ratio = ours / base
    console.print(f"target: ratio >= {TARGET_RATIO:g}: " + ("[green]met[/]" if ratio >= TARGET_RATIO else "[red]not met[/]"))
    mfu_text = f"{mfu:.3f}" if mfu is not None else "na"
    print(f"train: tokens_per_s={ours:.1f} baseline_tokens_per_s={base:.1f} ratio={ratio:.2f} mfu={mfu_text}",
          flush=True)


if __name__ == "__main__":
    main()
