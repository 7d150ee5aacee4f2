"""`codestill export` as a user runs it: the summary table, --json, the switches, and bad input as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.training.runs import damage, write_run

CODESTILL = str(Path(sys.executable).with_name("codestill"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CODESTILL, "export", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "160"})


def test_export_prints_a_summary_and_writes_the_folder(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    done = _run(str(run))
    assert done.returncode == 0, done.stderr
    assert "run demo-run: 8 records from 2 of 7 trajectories" in done.stdout
    rows = {" ".join(line.split()[:-1]): line.split()[-1] for line in done.stdout.splitlines() if line.strip()}
    assert rows["removed: contaminated"] == "1" and rows["removed: near_duplicate"] == "1"
    assert rows["read: uncommitted bytes left out"] == "120" and rows["records: plan:backward"] == "1"
    assert rows["records: code:plan-conditioned"] == "3" and rows["code records explained 3 of"] == "5"
    assert sorted(p.name for p in (run / "export").iterdir()) == [
        "README.md", "export.json", "lengths.png", "removed.jsonl", "sft.jsonl"]

    again = _run(str(run), "--out", str(tmp_path / "mine"), "--modular", "--no-decontam", "--no-near-dedup",
                 "--no-backward-plans", "--no-plan-conditioned", "--response-style", "explained+tests",
                 "--all-passing", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["options"] == {"modular": True, "forward_plans": True, "backward_plans": False,
                                 "plan_conditioned": False, "response_style": "explained+tests", "all_passing": True, "unverified": False,
                                 "decontaminate": [], "near_dedup": False, "near_threshold": 0.7}
    assert (report["kept"], report["records"]) == (4, 7)  # a1, a2, m1 and a3 (only a1-again is an exact duplicate)
    assert report["by_variant"] == {"code:final": 4, "code:modular": 1, "code:plan-conditioned": 0, "plan:forward": 2,
                                    "plan:backward": 0}
    assert json.loads((tmp_path / "mine" / "export.json").read_text()) == report

    only_he = _run(str(run), "--out", str(tmp_path / "he"), "--benchmark", "humaneval", "--json")
    assert json.loads(only_he.stdout)["removed"]["contaminated"] == 0


def test_bad_input_ends_in_one_line(tmp_path: Path) -> None:
    cases = [
        ([str(tmp_path / "nowhere")], "no such run directory"),
        ([str(write_run(tmp_path / "r")), "--benchmark", "apps"], "--benchmark apps: not a bundled benchmark"),
        ([str(tmp_path / "r"), "--response-style", "fancy"], "--response-style fancy: not a style"),
    ]
    damage(write_run(tmp_path / "bad"), 0, '{"schema_version": 1, "id": "t"}')
    cases.append(([str(tmp_path / "bad")], "(input 'input-0', record 1): not a valid Trajectory"))
    (tmp_path / "not-a-run").mkdir()
    cases.append(([str(tmp_path / "not-a-run")], "no ledger.sqlite in it"))
    for args, message in cases:
        done = _run(*args)
        assert done.returncode == 2, done.stdout
        assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2
