"""The memory fit (batch shape and checkpointing chosen to fit, a run that cannot fit refused before anything is
written) and the FLOPs / MFU arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codestill.errors import TrainingError
from training import TrainConfig, train
from training._flops import attended_length, flops_per_token, mfu, peak_flops
from training._memory import GB, MEMORY_ENV, ModelShape, Setup, estimate, model_shape, plan

# SmolLM2-135M-Instruct's shape: a small model with a big vocabulary, the case that was killed by the OOM killer.
SMOLLM2 = ModelShape(params=134_515_008, layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64,
                     vocab=49152)


def smollm2(length: int = 2048, lora: bool = False) -> Setup:
    return Setup(shape=SMOLLM2, length=length, lora=lora, lora_r=16, bf16=False, device="cpu", attention="sdpa")


def fits(setup: Setup, rows: int, checkpointing: bool) -> tuple[float, str]:
    """Just enough memory for this setting with the margin: nothing preferred to it fits."""
    return estimate(setup, rows, checkpointing).total / 0.9 + 1, "of test RAM"


def chosen(setup: Setup, avail: tuple[float, str], **given: object) -> tuple[int, int, bool]:
    kwargs = {"batch_size": None, "grad_accum": None, "checkpointing": None, **given}
    c = plan(setup, avail, default_checkpointing=False, **kwargs).choice  # type: ignore[arg-type]
    return c.batch_size, c.grad_accum, c.gradient_checkpointing


def test_the_largest_batch_that_fits_checkpointing_first_the_effective_batch_kept():
    s = smollm2()
    assert chosen(s, (1000 * GB, "")) == (4, 1, False)
    assert chosen(s, fits(s, 4, True)) == (4, 1, True)
    assert chosen(s, fits(s, 2, True)) == (2, 2, True)
    assert chosen(s, fits(s, 1, True)) == (1, 4, True)
    # Short rows: no checkpointing needed where long ones would need it.
    assert chosen(smollm2(512), fits(s, 4, True)) == (4, 1, False)


def test_the_estimate_grows_with_what_it_counts():
    s = smollm2()
    assert estimate(s, 2, False).total > estimate(s, 1, False).total > estimate(s, 1, True).total
    assert estimate(smollm2(4096), 1, True).total > estimate(s, 1, True).total
    # LoRA keeps no gradients or AdamW state for the 135M frozen weights.
    assert estimate(smollm2(lora=True), 1, True).fixed < estimate(s, 1, True).fixed - 1.5 * GB
    # Measured on this model (CPU, fp32, sdpa; see training/_memory.py): the user's LoRA run at batch 1 x 2048
    # peaked at 10.2 GB, the OOM-killed one at batch 4 passed 22.8 GB.
    assert 9 * GB < estimate(smollm2(lora=True), 1, False).total < 13 * GB
    assert estimate(smollm2(lora=True), 4, False).total > 22.8 * GB


def test_given_values_are_kept_and_refused_only_when_they_cannot_fit():
    s = smollm2()
    plenty = (1000 * GB, "")
    assert chosen(s, plenty, batch_size=1) == (1, 1, False)  # a given batch is the effective batch, as before
    assert chosen(s, plenty, batch_size=2, grad_accum=3, checkpointing=True) == (2, 3, True)
    assert chosen(s, plenty, grad_accum=2) == (4, 2, False)
    assert chosen(s, fits(s, 1, True), batch_size=1) == (1, 1, True)  # checkpointing is still chosen
    # A given setting over the margin but under what is available is taken (the margin is for auto values).
    need = estimate(s, 4, False).total
    assert chosen(s, (need * 1.02, ""), batch_size=4, checkpointing=False) == (4, 1, False)
    with pytest.raises(TrainingError) as refused:
        chosen(s, (need * 0.5, "of test RAM"), batch_size=4, checkpointing=False)
    message = str(refused.value)
    assert f"needs about {round(need / GB, 1)} GB at max_length 2048" in message
    for fix in ("lower --max-length", "use --lora", "lower --batch-size", "turn on --gradient-checkpointing",
                MEMORY_ENV):
        assert fix in message


def test_nothing_fits_even_one_row_with_checkpointing():
    s = smollm2(lora=True)
    one_row = estimate(s, 1, True).total
    with pytest.raises(TrainingError, match=r"needs about .* GB at max_length 2048 .*even batch 1") as refused:
        chosen(s, (one_row * 0.8, "of test RAM"))
    assert "use --lora" not in str(refused.value) and "lower --max-length" in str(refused.value)


def test_model_shape_reads_config_and_safetensors_headers(tiny_student, tmp_path):
    from transformers import AutoModelForCausalLM

    shape = model_shape(str(tiny_student), local=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_student, local_files_only=True)
    assert shape is not None and shape.params == sum(p.numel() for p in model.parameters())
    assert (shape.layers, shape.hidden, shape.heads, shape.vocab) == (2, 32, 2, model.config.vocab_size)
    # A sharded checkpoint: the index names the shards, each header counts its tensors.
    from safetensors.torch import save_file

    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text((tiny_student / "config.json").read_text())
    save_file({"a": torch.zeros(3, 4)}, sharded / "part-1.safetensors")
    save_file({"b": torch.zeros(5), "c": torch.zeros(2, 2)}, sharded / "part-2.safetensors")
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "part-1.safetensors", "b": "part-2.safetensors", "c": "part-2.safetensors"}}))
    assert model_shape(str(sharded), local=True).params == 12 + 5 + 4  # type: ignore[union-attr]
    # No weights file: the count comes from the config; no config: no estimate.
    (sharded / "model.safetensors.index.json").unlink()
    assert model_shape(str(sharded), local=True).params > 0  # type: ignore[union-attr]
    assert model_shape(str(tmp_path), local=True) is None


def test_plenty_of_memory_keeps_the_former_defaults(tiny_student, sft_file, tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "1000")
    c = TrainConfig(data=sft_file, student=str(tiny_student), out=tmp_path / "run").resolved()
    assert (c.batch_size, c.grad_accum, c.gradient_checkpointing) == (4, 1, False)
    assert c.memory is not None and "given by CODESTILL_MEMORY_GB" in c.memory.line()


def test_a_resumed_run_keeps_its_recorded_batch_shape(tiny_student, sft_file, tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "1000")
    out = tmp_path / "run"
    out.mkdir()
    recorded = TrainConfig(data=sft_file, student=str(tiny_student), out=out, batch_size=2, grad_accum=2).resolved()
    (out / "config.json").write_text(recorded.model_dump_json())
    resumed = TrainConfig(data=sft_file, student=str(tiny_student), out=out).resolved()
    assert (resumed.batch_size, resumed.grad_accum) == (2, 2)
    fresh = TrainConfig(data=sft_file, student=str(tiny_student), out=out, resume=False).resolved()
    assert (fresh.batch_size, fresh.grad_accum) == (4, 1)


def test_a_run_that_cannot_fit_is_refused_before_anything_is_written(tiny_student, sft_file, tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "0.01")
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"this machine has 0\.0 GB given by CODESTILL_MEMORY_GB: lower "
                                            "--max-length or use --lora"):
        train(TrainConfig(data=sft_file, student=str(tiny_student), out=out, max_steps=1, progress=False))
    assert not out.exists()
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(TrainingError, match="not a number"):
        train(TrainConfig(data=sft_file, student=str(tiny_student), out=out, max_steps=1, progress=False))
    assert not out.exists()


def test_flops_and_mfu():
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_flops("NVIDIA H200") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12 and peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("NVIDIA L4") == 121e12 and peak_flops("Tesla T4") is None
    assert attended_length([2, 4]) == pytest.approx((4 + 16) / 6)
    full = flops_per_token(SMOLLM2, seq=1000.0)
    assert full == 6 * SMOLLM2.params + 12 * 30 * 576 * 1000.0
    lora = flops_per_token(SMOLLM2, seq=1000.0, lora_params=SMOLLM2.lora_params(16))
    assert lora == 4 * SMOLLM2.params + 6 * SMOLLM2.lora_params(16) + 12 * 30 * 576 * 1000.0
    # 10k tokens/s of a 1 GFLOP-per-token model on two H100s: 1e13 / (2 x 989e12).
    assert mfu(10_000.0, 1e9, peak_flops("NVIDIA H100 80GB HBM3"), devices=2) == pytest.approx(1e13 / 1.978e15)
    assert mfu(10_000.0, 1e9, None) is None


def test_a_cpu_run_reports_flops_but_no_mfu_and_its_memory_plan(tiny_student, sft_file, tmp_path):
    result = train(TrainConfig(data=sft_file, student=str(tiny_student), out=tmp_path / "run", max_steps=1,
                               save_steps=None, max_length=256, progress=False))
    assert result.mfu is None and result.flops_per_token is not None and result.flops_per_token > 0
    memory = json.loads((tmp_path / "run" / "data_report.json").read_text())["memory"]
    assert memory["batch_size"] == 4 and memory["estimate_gb"] > 0 and memory["available_gb"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["batch_size"], config["grad_accum"], config["gradient_checkpointing"]) == (4, 1, False)
    assert Path(result.model_dir).is_dir()
