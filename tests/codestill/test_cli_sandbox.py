"""`codestill sandbox ...` as a user runs it: a real process, the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = [str(Path(sys.executable).with_name("codestill"))]


def codestill(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_run_prints_the_per_test_result(tmp_path):
    (tmp_path / "p.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "t.py").write_text("assert add(1, 2) == 3\nassert add(2, 2) == 5\n")
    done = codestill("sandbox", "run", str(tmp_path / "p.py"), "--tests", str(tmp_path / "t.py"))
    assert done.returncode == 1
    assert "assert add(1, 2) == 3" in done.stdout and "passed" in done.stdout
    assert "4 == 5 is False" in done.stdout


def test_run_json_and_io_cases(tmp_path):
    (tmp_path / "p.py").write_text("print(int(input()) * 2)\n")
    (tmp_path / "cases.jsonl").write_text('{"input": "2", "output": "4"}\n{"input": "5", "output": "10"}\n')
    done = codestill("sandbox", "run", str(tmp_path / "p.py"), "--io", str(tmp_path / "cases.jsonl"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "passed" and len(result["tests"]) == 2


def test_check_says_ready_in_one_line():
    done = codestill("sandbox", "check")
    assert done.returncode == 0
    assert done.stdout.startswith("sandbox ready: Docker engine")


def test_no_engine_is_one_line_with_the_fix_and_no_traceback():
    done = codestill("sandbox", "check", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "No Docker engine answers at unix:///nonexistent.sock" in done.stderr
    assert "codestill sandbox setup" in done.stderr


def test_a_malformed_cases_file_names_file_and_line(tmp_path):
    (tmp_path / "p.py").write_text("print(1)\n")
    (tmp_path / "cases.jsonl").write_text('{"input": "1", "output": "1"}\nnot json\n')
    done = codestill("sandbox", "run", str(tmp_path / "p.py"), "--io", str(tmp_path / "cases.jsonl"))
    assert done.returncode == 2
    assert "cases.jsonl:2" in done.stderr and "Traceback" not in done.stderr
