"""`codestill seeds mine` as a user runs it: a real process on real trees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
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
    assert "pyright" in stats["typecheck"] and "skipped" not in stats["typecheck"]  # the dev extra's basedpyright
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


# The first four come before the gate: 5 candidates, so with --batch 2 two batches are checkpointed.
STDLIB_PIECES = ("textwrap", "fnmatch", "colorsys", "calendar", "shlex", "bisect", "heapq")
GATE = 'def gate(x):\n    """x, once the gate opened."""\n    return x\n'


def copied_library(root: Path, *, gate_as_fifo: bool) -> Path:
    """A library of real standard-library modules with a gate in the middle of the file order: a named
    pipe blocks the miner's read (so a test can interrupt it at a known point) until it becomes a file."""
    (root / "pkg").mkdir(parents=True)
    (root / "LICENSE").write_text(MIT)
    for i, name in enumerate(STDLIB_PIECES):
        source = Path(sysconfig.get_path("stdlib")) / f"{name}.py"
        (root / "pkg" / f"{'a' if i < 4 else 'z'}_{name}.py").write_text(source.read_text(encoding="utf-8"))
    gate = root / "pkg" / "m_gate.py"
    if gate_as_fifo:
        os.mkfifo(gate)
    else:
        gate.write_text(GATE)
    return root


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    whole = copied_library(tmp_path / "whole" / "mylib", gate_as_fifo=False)
    # About checkpoints, not types: without the type check, which would start Pyright once per batch of 2.
    reference = seeds_cli(str(whole), "--out", "seeds.jsonl", "--batch", "2", "--no-typecheck", "--json",
                          cwd=whole.parent)
    assert reference.returncode == 0, reference.stderr
    expected = list(read_jsonl(whole.parent / "seeds.jsonl", Seed))
    report = json.loads(reference.stdout)
    assert report["files"] == len(STDLIB_PIECES) + 1 and any(s.id == "mylib:pkg.m_gate.gate" for s in expected)

    tree = copied_library(tmp_path / "run" / "mylib", gate_as_fifo=True)
    argv = [CLI, "seeds", "mine", str(tree), "--out", "seeds.jsonl", "--batch", "2", "--no-typecheck"]
    state = tree.parent / "seeds.jsonl.partial.json"
    # Ctrl-C's default action in the child: a test run started in the background by a shell without job
    # control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    first = subprocess.Popen(argv, cwd=tree.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not state.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # The miner cannot finish: it checkpointed the files before the gate and waits on the pipe.
    assert first.poll() is None and state.exists()
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "run the same command to go on" in err
    assert state.exists() and not (tree.parent / "seeds.jsonl").exists()
    checkpoint = json.loads(state.read_text())
    assert 0 < len(checkpoint["done"]) < report["files"]
    assert all(Path(done).name.startswith("a_") for done in checkpoint["done"])

    (tree / "pkg" / "m_gate.py").unlink()
    (tree / "pkg" / "m_gate.py").write_text(GATE)
    resumed = subprocess.run([*argv, "--json"], cwd=tree.parent, capture_output=True, text=True, timeout=300,
                             env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(checkpoint['done'])} of {report['files']} files done" in resumed.stderr
    seeds = list(read_jsonl(tree.parent / "seeds.jsonl", Seed))
    assert [(s.id, s.code) for s in seeds] == [(s.id, s.code) for s in expected]
    stats = json.loads(resumed.stdout)
    assert (stats["functions"], stats["removed"], stats["seeds"]) == (report["functions"], report["removed"],
                                                                        report["seeds"])
    removals = list(read_jsonl(tree.parent / "seeds.removed.jsonl", Removal))
    reference_removals = list(read_jsonl(whole.parent / "seeds.removed.jsonl", Removal))
    assert sorted((r.id, r.filter) for r in removals) == sorted((r.id, r.filter) for r in reference_removals)
    assert not state.exists() and not (tree.parent / "seeds.jsonl.partial").exists()
