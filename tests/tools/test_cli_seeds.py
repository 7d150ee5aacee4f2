"""`codestill seeds mine` as a user runs it: a real process on real trees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codestill.records import read_jsonl
from codestill.schemas import Seed
from tests.tools.test_seeds import GOOD, MIT
from tools.seeds import FILTERS, Removal

CLI = str(Path(sys.executable).with_name("codestill"))


ENV = {**os.environ, "COLUMNS": "200"}  # rich wraps at 80 columns without a terminal


def seeds_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "seeds", "mine", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=ENV)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "mylib"
    (root / "pkg").mkdir(parents=True)
    (root / "LICENSE").write_text(MIT)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "text.py").write_text(GOOD + "\n\ndef bare(x):\n    return x\n")
    (root / "pkg" / "maths.py").write_text('def double(x):\n    """Twice x."""\n    return x * 2\n\n\n'
                                           'def clamp(x, lo, hi):\n    """x kept between lo and hi."""\n'
                                           '    return max(lo, min(x, hi))\n')
    (root / "pkg" / "broken.py").write_text("def oops(:\n")
    for hidden in ("tests", ".venv"):  # tests and hidden folders are not the library's code
        (root / hidden).mkdir()
        (root / hidden / "more.py").write_text('def triple(x):\n    """Three times x."""\n    return 3 * x\n')
    return root


def test_mining_a_tree_writes_seeds_and_a_second_run_skips(tree, tmp_path):
    done = seeds_cli(str(tree), "--out", "out/seeds.jsonl", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out" / "seeds.jsonl"
    seeds = list(read_jsonl(out, Seed))
    assert sorted(s.id for s in seeds) == ["mylib:pkg.maths.clamp", "mylib:pkg.maths.double", "mylib:pkg.text.top_words"]
    assert all(s.licence == "MIT" and s.path.startswith(str(tree)) for s in seeds)
    stats = json.loads(done.stdout)
    assert (stats["files"], stats["files_skipped"], stats["functions"], stats["seeds"]) == (4, 1, 4, 3)
    assert list(stats["removed"]) == list(FILTERS) and stats["removed"]["no_docstring"] == 1
    assert json.loads((tmp_path / "out" / "seeds.stats.json").read_text())["seeds"] == 3
    log = list(read_jsonl(tmp_path / "out" / "seeds.removed.jsonl", Removal))
    assert [(r.id, r.filter) for r in log] == [("mylib:pkg.text.bare", "no_docstring")]
    assert sorted(p.name for p in out.parent.iterdir()) == ["seeds.jsonl", "seeds.removed.jsonl", "seeds.stats.json"]

    before = out.stat().st_mtime_ns
    again = seeds_cli(str(tree), "--out", "out/seeds.jsonl", cwd=tmp_path)
    assert again.returncode == 0 and "complete (3 seeds)" in again.stderr and out.stat().st_mtime_ns == before

    forced = seeds_cli(str(tree), "--out", "out/seeds.jsonl", "--force", "--limit", "2", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(list(read_jsonl(out, Seed))) == 2
    assert "over the limit" in forced.stdout and "kept" in forced.stdout  # the summary table


@pytest.mark.parametrize(("args", "message"), [
    (["does/not/exist"], "does/not/exist does not exist"),
    (["empty"], "no Python files under"),
    ([], "nothing to mine"),
])
def test_bad_input_ends_in_one_clear_message(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    done = seeds_cli(*args, "--out", "seeds.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("seeds*"))


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, stdlib_mined):
    expected, report = stdlib_mined
    argv = [CLI, "seeds", "mine", "--stdlib", "--out", "seeds.jsonl", "--batch", "20"]
    state = tmp_path / "seeds.jsonl.partial.json"
    first = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not state.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGINT)  # after the first checkpoint, long before the last
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "run the same command to go on" in err
    assert state.exists() and not (tmp_path / "seeds.jsonl").exists()
    checkpoint = json.loads(state.read_text())
    assert 0 < len(checkpoint["done"]) < report.files

    resumed = subprocess.run([*argv, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(checkpoint['done'])} of {report.files} files done" in resumed.stderr
    seeds = list(read_jsonl(tmp_path / "seeds.jsonl", Seed))
    assert [(s.id, s.code) for s in seeds] == [(s.id, s.code) for s in expected]
    stats = json.loads(resumed.stdout)
    assert (stats["functions"], stats["removed"], stats["seeds"]) == (report.functions, report.removed, report.seeds)
    removals = list(read_jsonl(tmp_path / "seeds.removed.jsonl", Removal))
    assert sorted(r.model_dump_json() for r in removals) == sorted(r.model_dump_json() for r in report.removals)
    assert not state.exists() and not (tmp_path / "seeds.jsonl.partial").exists()
