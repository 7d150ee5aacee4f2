"""`codestill traces ls|show` as a user runs them: a real process, a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codestill.traces import RunSummary, TraceStore
from tests.codestill.traces.conftest import run_graphs
from tests.codestill.traces.graphs import SPANS_PER_RUN, build

ROOT = Path(__file__).resolve().parents[3]
CLI = str(Path(sys.executable).with_name("codestill"))


def traces(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "traces", *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "220", "NO_COLOR": "1", **(env or {})})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "traces.sqlite"
    run_graphs(path, ["mbpp/11", "mbpp/12"], state={"blob": "y = 2\n" * 1000})
    run_graphs(path, ["mbpp/13"], graph=build(fail_in_tester="boom"))
    return path


def test_ls_table_and_json(store):
    done = traces("ls", "--store", str(store))
    assert done.returncode == 0, done.stderr
    for text in ("mbpp/11", "mbpp/12", "mbpp/13", "solve", "accepted", "error", "59", "3 newest runs"):
        assert text in done.stdout
    done = traces("ls", "--store", str(store), "--json", "--limit", "2")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert [r["task_id"] for r in runs] == ["mbpp/13", *(["mbpp/12"] if runs[1]["task_id"] == "mbpp/12" else
                                                         ["mbpp/11"])]
    assert runs[0]["status"] == "error" and runs[1]["verdict"] == "accepted"
    assert runs[1]["spans"] == SPANS_PER_RUN and runs[1]["tokens"] == 59


def test_the_store_path_comes_from_the_settings(store):
    done = traces("ls", "--json", env={"CODESTILL_TRACES__PATH": str(store)})
    assert done.returncode == 0, done.stderr
    assert {r["task_id"] for r in json.loads(done.stdout)} == {"mbpp/11", "mbpp/12", "mbpp/13"}


def _run_of(store: Path, task: str) -> RunSummary:
    with TraceStore(store) as opened:
        return next(r for r in opened.list_runs() if r.task_id == task)


def test_show_tree_by_short_id(store):
    done = traces("show", _run_of(store, "mbpp/11").short_id, "--store", str(store))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for text in ("graph solve", "node planner", "llm FakeMessagesListChatModel", "42+17 tokens",
                 "fake-planner", "> solve mbpp/11", "< 1. write add 2. test it", "retriever ModuleMemory",
                 "chain normalise", "tool sandbox.run", "verdict accepted",
                 f"{SPANS_PER_RUN} spans, 59 tokens"):
        assert text in out, text
    out = traces("show", _run_of(store, "mbpp/13").id, "--store", str(store)).stdout
    assert "ValueError: boom" in out and "error" in out


def test_show_json_has_full_decompressed_payloads(store):
    rid = _run_of(store, "mbpp/12").id
    done = traces("show", rid[:30], "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    tree = json.loads(done.stdout)
    assert tree["spans"] == SPANS_PER_RUN and tree["root"]["id"] == rid
    assert tree["root"]["inputs"]["blob"] == "y = 2\n" * 1000
    planner = tree["root"]["children"][0]
    assert planner["children"][0]["outputs"]["generations"][0]["content"] == "1. write add\n2. test it"


@pytest.mark.parametrize(("args", "message"), [
    (("ls", "--store", "{tmp}/missing.sqlite"), "no trace store at"),
    (("show", "abc", "--store", "{tmp}/missing.sqlite"), "no trace store at"),
    (("ls", "--store", "{tmp}"), "is a directory"),
    (("show", "0123abcd", "--store", "{store}"), "no run '0123abcd'"),
])
def test_user_errors_are_one_red_line_without_traceback(store, tmp_path, args, message):
    done = traces(*(a.format(tmp=tmp_path, store=store) for a in args))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("error:")
