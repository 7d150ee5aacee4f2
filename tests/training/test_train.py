"""Whole runs: a few steps in process, LoRA, a real crash (SIGKILL) and its resume, the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codestill.errors import TrainingError
from codestill.records import write_jsonl
from tests.training.conftest import bank_records, sft_record
from training import TrainConfig, train
from training._memory import MEMORY_ENV
from training._trained_on import read_trained_on

CLI = str(Path(sys.executable).with_name("codestill"))
FAST = {"max_length": 256, "batch_size": 2, "learning_rate": 1e-3, "logging_steps": 1, "progress": False}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200", "TOKENIZERS_PARALLELISM": "false", **(env or {})})


def weights(path: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True).state_dict()


def metric_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_few_steps_learn_and_leave_a_complete_run(tiny_student, sft_file, tmp_path):
    out = tmp_path / "run"
    result = train(TrainConfig(data=sft_file, student=str(tiny_student), out=out, max_steps=6, save_steps=3,
                               eval_fraction=0.2, **FAST))
    assert result.global_step == 6 and result.resumed_from_step is None
    assert 0 < result.train_tokens <= 6 * 2 * 256  # real tokens only: at most 6 steps of 2 full rows
    losses = [m for m in metric_lines(out) if "loss" in m]
    assert [m["step"] for m in losses] == [1, 2, 3, 4, 5, 6]
    assert losses[-1]["loss"] < losses[0]["loss"]
    assert {"loss_code", "loss_plan"} <= losses[0].keys()
    evals = [m for m in metric_lines(out) if "eval_loss" in m]
    assert [m["step"] for m in evals] == [3, 6] and result.eval_loss == evals[-1]["eval_loss"]
    for m in evals:  # the held-out split's loss is the same λ-weighted sum of per-task token means
        assert m["eval_loss"] == pytest.approx(0.5 * m["eval_loss_code"] + 0.5 * m["eval_loss_plan"], rel=1e-5)
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert TrainConfig.model_validate_json((out / "config.json").read_text()).max_steps == 6
    report = json.loads((out / "data_report.json").read_text())
    assert report["task_weights"] == {"code": 0.5, "plan": 0.5}
    assert [(s["split"], s["records"]) for s in report["splits"]] == [("train", 19), ("eval", 5)]
    before, after = weights(tiny_student), weights(result.model_dir)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (result.model_dir / "tokenizer.json").exists()
    # What it was trained on, in the run directory and with the model (codestill eval reads it).
    records = [json.loads(line) for line in sft_file.read_text().splitlines()]
    for where in (out, result.model_dir):
        found = read_trained_on(where)
        assert found is not None and found[1] == where / "training_data.json"
        assert found[0].task_ids == sorted({r["provenance"]["task_id"] for r in records})
        assert found[0].records == len(records) == 24

    # The same directory under another λ is another run: refused, unless told to start over.
    other = TrainConfig(data=sft_file, student=str(tiny_student), out=out, max_steps=2, plan_weight=0.3, **FAST)
    with pytest.raises(TrainingError, match="plan_weight"):
        train(other)
    again = train(other.model_copy(update={"resume": False}))
    assert again.resumed_from_step is None and again.global_step == 2
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]


def test_the_first_step_trains_and_a_warmup_ramps_up_from_it(tiny_student, sft_file, tmp_path):
    # The default warmup (3% of 2 steps) is shorter than one step: no warmup, the first step at the full rate.
    train(TrainConfig(data=sft_file, student=str(tiny_student), out=tmp_path / "two", max_steps=2,
                      save_steps=None, **FAST))
    rates = [m["learning_rate"] for m in metric_lines(tmp_path / "two") if "loss" in m]
    assert rates[0] > 0 and rates[0] == pytest.approx(1e-3)
    # A 3-step warmup (half of 6) reaches the peak at the third step, then the linear decay follows.
    train(TrainConfig(data=sft_file, student=str(tiny_student), out=tmp_path / "six", max_steps=6, save_steps=None,
                      warmup_ratio=0.5, lr_scheduler="linear", **FAST))
    rates = [m["learning_rate"] for m in metric_lines(tmp_path / "six") if "loss" in m]
    assert rates == pytest.approx([1e-3 * f for f in (1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3)])


def test_lora_run_writes_a_merged_model(tiny_student, sft_file, tmp_path):
    result = train(TrainConfig(data=sft_file, student=str(tiny_student), out=tmp_path / "lora", max_steps=2,
                               save_steps=None, lora=True, lora_r=4, lora_alpha=8, **FAST))
    assert not (result.model_dir / "adapter_config.json").exists()  # a plain causal LM, adapters merged in
    before, after = weights(tiny_student), weights(result.model_dir)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


CRASH_SCRIPT = """
import os, signal, sys
from pathlib import Path
from transformers import TrainerCallback
from training import TrainConfig, train

class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 5:  # after checkpoint-3, before checkpoint-6: no cleanup of any kind
            os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig.model_validate_json(Path(sys.argv[1]).read_text()), callbacks=[Crash()])
"""


def test_resume_after_a_crash_continues_from_the_last_checkpoint(tiny_student, sft_file, tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(data=sft_file, student=str(tiny_student), out=out, max_steps=8, save_steps=3,
                         **{**FAST, "progress": True})
    (tmp_path / "config.json").write_text(config.model_dump_json())
    (tmp_path / "crash.py").write_text(CRASH_SCRIPT)
    crashed = run(sys.executable, str(tmp_path / "crash.py"), str(tmp_path / "config.json"))
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert (out / "checkpoint-3" / "trainer_state.json").exists() and not (out / "model").exists()
    # Step 4 was logged after checkpoint-3 (step 5's line would come after the kill): stale lines to drop.
    assert max(m["step"] for m in metric_lines(out)) == 4
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "lo')  # as if the kill had come in the middle of a write

    resumed = run(CLI, "train", "--data", str(sft_file), "--student", str(tiny_student), "--out", str(out),
                  "--max-steps", "8", "--save-steps", "3", "--max-length", "256", "--batch-size", "2",
                  "--lr", "1e-3", "--logging-steps", "1")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from step 3" in resumed.stdout
    result = json.loads((out / "train_result.json").read_text())
    assert (result["global_step"], result["resumed_from_step"]) == (8, 3)
    assert [m["step"] for m in metric_lines(out) if "loss" in m] == list(range(1, 9))  # no step twice
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8 and (out / "model" / "config.json").exists()

    # It continued where it stopped, not merely at the same step number: optimizer, schedule, data position
    # and RNG came back, so the crashed-and-resumed run is the run that never crashed.
    straight = train(config.model_copy(update={"out": tmp_path / "straight", "progress": False}))
    losses = [m["loss"] for m in metric_lines(out) if "loss" in m]
    assert losses == pytest.approx([m["loss"] for m in metric_lines(straight.out) if "loss" in m], rel=1e-5)
    resumed_weights, straight_weights = weights(out / "model"), weights(straight.model_dir)
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor)


def test_torchrun_runs_the_same_command_data_parallel(tiny_student, sft_file, tmp_path):
    """Two CPU processes (gloo) under torchrun, the command unchanged: one run directory, written once."""
    out = tmp_path / "ddp"
    done = run(str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node", "2", CLI,
               "train", "--data", str(sft_file), "--student", str(tiny_student), "--out", str(out),
               "--max-steps", "3", "--save-steps", "3", "--max-length", "256", "--batch-size", "2",
               "--grad-accum", "2", "--lr", "1e-3", "--logging-steps", "1", "--eval-fraction", "0.2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained to step 3") == 1  # the summary comes from the main process only
    lines = [m for m in metric_lines(out) if "loss" in m]
    assert [m["step"] for m in lines] == [1, 2, 3]  # one writer: no line twice
    # The logged loss is the mean over processes of each one's share; it equals the λ-weighted per-task
    # means pooled over both processes only if the token counts were summed across them.
    for m in lines:
        assert m["loss"] == pytest.approx(0.5 * m["loss_code"] + 0.5 * m["loss_plan"], rel=1e-4)
    assert (out / "model" / "config.json").exists() and (out / "checkpoint-3" / "trainer_state.json").exists()


def test_cli_end_to_end(tiny_student, tmp_path):
    data = tmp_path / "sft.jsonl"
    long = sft_record("too-long", "code", "Repeat.", "x = 1\n" * 400)
    write_jsonl(data, [*bank_records(6), long])
    out = tmp_path / "run"
    done = run(CLI, "train", "--data", str(data), "--student", str(tiny_student), "--out", str(out),
               "--max-steps", "3", "--max-length", "256", "--batch-size", "2", "--eval-fraction", "0.2",
               "--lambda", "0.3", "--logging-steps", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained to step 3" in done.stdout
    # The batch shape chosen for the machine is said, with why (a given batch size is kept, grad-accum 1).
    assert "memory: batch 2 x grad-accum 1, gradient checkpointing off (estimated peak" in done.stderr
    splits = json.loads((out / "data_report.json").read_text())["splits"]
    assert sum(s["dropped"] for s in splits) >= 1
    assert "too-long" in [i for s in splits for i in s["dropped_ids"]]
    assert json.loads((out / "config.json").read_text())["plan_weight"] == 0.3
    assert (out / "loss_curve.png").exists() and (out / "checkpoint-3").is_dir()
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out / "model", local_files_only=True).chat_template
    assert weights(out / "model").keys() == weights(tiny_student).keys()


def one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    message = done.stderr.strip()
    assert message.startswith("error:") and len(message.splitlines()) == 1, message
    assert "Traceback" not in done.stderr and all(n in message for n in needles), message


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_cli_bad_input_ends_in_one_line_and_writes_nothing(tiny_student, sft_file, tmp_path):
    def train_cli(data: Path, student: Path, out: Path) -> subprocess.CompletedProcess:
        return run(CLI, "train", "--data", str(data), "--student", str(student), "--out", str(out),
                   "--max-steps", "1", "--max-length", "256")

    one_line_error(train_cli(tmp_path / "nope.jsonl", tiny_student, tmp_path / "a"), "nope.jsonl", "check the path")
    malformed = tmp_path / "malformed.jsonl"
    malformed.write_text(sft_file.read_text().splitlines()[0] + "\n{not json\n")
    one_line_error(train_cli(malformed, tiny_student, tmp_path / "b"), "malformed.jsonl line 2", "not JSON")

    (tmp_path / "not-a-model").mkdir()
    one_line_error(train_cli(sft_file, tmp_path / "not-a-model", tmp_path / "c"), "not a model directory")
    # A directory with a config.json but no weights or tokenizer: refused when loading, before any output.
    half = tmp_path / "half-a-model"
    half.mkdir()
    (half / "config.json").write_text((tiny_student / "config.json").read_text())
    one_line_error(train_cli(sft_file, half, tmp_path / "d"), "cannot load it")
    # A run that cannot fit in memory (here: told there is almost none) is refused, with the fixes.
    tight = run(CLI, "train", "--data", str(sft_file), "--student", str(tiny_student), "--out", str(tmp_path / "e"),
                "--max-steps", "1", "--max-length", "256", env={MEMORY_ENV: "0.01"})
    one_line_error(tight, "needs about", "GB at max_length 256", "lower --max-length or use --lora")

    # The output directory of another run (here: another λ) is refused, not mixed with this one.
    other = tmp_path / "other-run"
    other.mkdir()
    (other / "config.json").write_text(TrainConfig(data=sft_file, student=str(tiny_student), out=other,
                                                    max_length=256, plan_weight=0.9).resolved().model_dump_json())
    (other / "checkpoint-5").mkdir()
    (other / "checkpoint-5" / "trainer_state.json").write_text("{}")
    before = tree(other)
    one_line_error(train_cli(sft_file, tiny_student, other), "plan_weight=0.9", "--no-resume")
    assert tree(other) == before
    assert not any((tmp_path / d).exists() for d in "abcde")  # no output of a refused run


def test_an_output_dir_that_is_not_a_training_run_is_never_written(tiny_student, sft_file, tmp_path):
    # The student's own directory (or a batch run's, which has its own config.json) given as --out:
    # even --no-resume, which removes a run's files by name, must leave it alone.
    before = tree(tiny_student)
    for resume in (True, False):
        config = TrainConfig(data=sft_file, student=str(tiny_student), out=tiny_student, resume=resume, **FAST)
        with pytest.raises(TrainingError, match="not a codestill training run"):
            train(config)
    assert tree(tiny_student) == before

    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    with pytest.raises(TrainingError, match="is a file"):
        train(TrainConfig(data=sft_file, student=str(tiny_student), out=a_file, **FAST))
    assert a_file.read_text() == "mine"
