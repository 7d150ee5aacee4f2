"""`codestill demo` (what `make demo` runs): with no model and no key it starts the sim itself, runs
generate and export on the 20 bundled problems, and says where everything is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from codestill.schemas import SFTRecord

CODESTILL = str(Path(sys.executable).with_name("codestill"))


def test_demo_runs_the_pipeline_on_the_sim_and_says_where_things_are(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([CODESTILL, "demo", "--out", "runs/demo", "--set", "sandbox.pool_size=2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "runs" / "demo"
    assert "starting codestill sim" in done.stdout
    for where in ("runs/demo/trajectories.jsonl", "runs/demo/stats.json", "runs/demo/traces.sqlite",
                  "codestill traces ls --store runs/demo/traces.sqlite"):
        assert where in done.stdout
    stats = json.loads((run / "stats.json").read_text())
    assert stats["yield"]["inputs"] == 20 and stats["yield"]["accepted"] >= 15
    records = [SFTRecord.model_validate_json(line) for line in (run / "export" / "sft.jsonl").read_bytes().splitlines()]
    variants = {v: sum(r.tags[0] == v for r in records) for v in ("code:final", "code:plan-conditioned")}
    assert variants["code:final"] == stats["yield"]["accepted"] and variants["code:plan-conditioned"] > 0
    assert "records: code:plan-conditioned" in done.stdout and "code records explained" in done.stdout
    assert (run / "memory").is_dir()  # the sim's demo keeps its modules out of the shared memory
