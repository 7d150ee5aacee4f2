"""`codestill memory ...` as a user runs it: a real process, a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codestill.config import MemoryConfig
from codestill.records import read_jsonl
from codestill.schemas import StoredModule
from memory import ModuleMemory
from tests.memory.conftest import module

CLI = str(Path(sys.executable).with_name("codestill"))
CODES = [
    "def is_prime(n):\n    \"\"\"Tell whether n is a prime number.\"\"\"\n    return n > 1 and all(n % d for d in range(2, n))\n",
    "def reverse_words(s):\n    \"\"\"Reverse the order of the words in a sentence.\"\"\"\n    return ' '.join(s.split()[::-1])\n",
    "def celsius(f):\n    \"\"\"Convert a temperature from Fahrenheit to Celsius.\"\"\"\n    return (f - 32) * 5 / 9\n",
]


def memory_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "memory", *args], capture_output=True, text=True, timeout=180, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def filled(tmp_path: Path, embedder) -> Path:
    # The default memory.path, relative to where the command runs.
    with ModuleMemory(MemoryConfig(path=tmp_path / ".codestill" / "memory"), embedder=embedder) as m:
        m.add_many([module(c) for c in CODES])
    return tmp_path


def test_stats_ls_search_show_json(filled):
    stats = json.loads(memory_cli("stats", "--json", cwd=filled).stdout)
    assert stats["records"] == 3 and stats["times_added"] == 3
    listed = json.loads(memory_cli("ls", "--json", cwd=filled).stdout)
    assert sorted(m["name"] for m in listed) == ["celsius", "is_prime", "reverse_words"]
    hits = json.loads(memory_cli("search", "flip the word order of a string", "-k", "2", "--json", cwd=filled).stdout)
    assert hits[0]["module"]["name"] == "reverse_words" and 0 <= hits[0]["score"] <= 1
    shown = memory_cli("show", hits[0]["module"]["id"][:10], cwd=filled)
    assert shown.returncode == 0 and "def reverse_words(s)" in shown.stdout and "return ' '.join" in shown.stdout
    table = memory_cli("search", "temperature conversion", cwd=filled)
    assert "def celsius(f)" in table.stdout


def test_export_import_rm(filled, tmp_path):
    out = filled / "modules.jsonl"
    assert memory_cli("export", str(out), cwd=filled).returncode == 0
    exported = list(read_jsonl(out, StoredModule))
    assert len(exported) == 3
    other = tmp_path / "other"
    done = memory_cli("import", str(out), "--path", str(other), "--json", cwd=filled)
    assert json.loads(done.stdout) == {"read": 3, "added": 3, "records": 3}, done.stderr
    again = memory_cli("import", str(out), "--path", str(other), "--json", cwd=filled)
    assert json.loads(again.stdout) == {"read": 3, "duplicate": 3, "records": 3}
    rm = memory_cli("rm", exported[0].id, "--path", str(other), cwd=filled)
    assert rm.returncode == 0 and exported[0].id in rm.stderr
    assert json.loads(memory_cli("stats", "--json", "--path", str(other), cwd=filled).stdout)["records"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["ls", "--path", "nowhere"], "there is no module memory at nowhere"),
    (["show", "zzz"], "no module with id 'zzz'"),
    (["import", "bad.jsonl"], "bad.jsonl line 1"),
    (["stats", "--url", "http://127.0.0.1:9"], "does not answer"),
])
def test_user_errors_are_one_line(filled, args, message):
    (filled / "bad.jsonl").write_text("{not json\n")
    done = memory_cli(*args, cwd=filled)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_bad_import_changes_nothing(filled):
    (filled / "bad.jsonl").write_text(StoredModule(id="x", name="f", signature="def f()", code="def f():\n    pass\n",
                                                   created_at=datetime(2026, 1, 1, tzinfo=UTC)).model_dump_json() + "\n{oops\n")
    assert memory_cli("import", "bad.jsonl", cwd=filled).returncode == 2
    assert json.loads(memory_cli("stats", "--json", cwd=filled).stdout)["records"] == 3
