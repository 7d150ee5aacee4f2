"""Every seed format through the commands that read seeds, as a user runs them (``codestill`` in a
subprocess, the simulated teacher over HTTP): ``generate`` and ``evolve`` read each instruction format,
``instruct`` each seed-function format, every file with a malformed line that is reported by its number
and passed over while the good records are used. The formats themselves: ``test_inputs``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codestill.data import load_mbpp
from codestill.records import read_jsonl, write_jsonl
from codestill.run import RunDir
from codestill.run._inputs import read_inputs
from codestill.schemas import Seed, Task
from codestill.sim import SimConfig, serve_subprocess

CODESTILL = str(Path(sys.executable).with_name("codestill"))
SEEDS = [Seed(id=f"demo:m.scale{i}", name=f"scale{i}", signature=f"def scale{i}(xs)",
              code=f"def scale{i}(xs):\n    \"\"\"Each number of xs times {i}.\"\"\"\n    return [x * {i} for x in xs]\n")
         for i in (2, 3)]
BANK = {p.id: p.to_task() for p in load_mbpp() if p.id in ("mbpp/2", "mbpp/4")}
ONE, TWO = BANK["mbpp/2"], BANK["mbpp/4"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CODESTILL, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CODESTILL_LLM__API_KEY": "sk-test"})


def _jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _dataset(path: Path, rows: list[dict[str, Any]]) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


# Each instruction format: (write the file, the good instructions in order, the bad line's number and problem).
TASK_FORMATS: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "bare": (lambda d: _jsonl(d / "bare.jsonl", [{"instruction": ONE.instruction}, "{oops",
                                                  {"id": "mine", "instruction": TWO.instruction}]),
             [ONE.instruction, TWO.instruction], "line 2: not JSON"),
    "record": (lambda d: _jsonl(d / "tasks.jsonl", [ONE.model_dump_json(), TWO.model_dump_json(),
                                                    {**ONE.model_dump(mode="json"), "schema_version": 0}]),
               [ONE.instruction, TWO.instruction], "line 3: written with schema_version 0, this codestill reads 1"),
    "alpaca": (lambda d: _jsonl(d / "alpaca.jsonl", [
        {"instruction": ONE.instruction, "input": "(3, 4, 5, 6) and (5, 7, 4, 10)", "output": "def f(): pass"},
        {"instruction": "", "input": "", "output": "x"},
        {"instruction": TWO.instruction, "input": "", "output": ""}]),
               [f"{ONE.instruction}\n\nInput:\n(3, 4, 5, 6) and (5, 7, 4, 10)", TWO.instruction],
               "line 2: not a Task (an instruction): instruction"),
    "dataset": (lambda d: _dataset(d / "saved", [{"instruction": ONE.instruction, "input": "", "output": "x"},
                                                 {"instruction": TWO.instruction, "input": "", "output": None},
                                                 {"instruction": None, "input": "[1]", "output": "y"}]),
                [ONE.instruction, TWO.instruction], "row 2: no \"instruction\""),
}
# Each seed-function format, likewise: the good seeds' function names in order.
SEED_FORMATS: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "bare": (lambda d: _jsonl(d / "bare.jsonl", [{"code": SEEDS[0].code}, {"instruction": "Scale xs by 2."},
                                                  {"id": "mine", "code": SEEDS[1].code}]),
             ["scale2", "scale3"], "line 2: an instruction without code"),
    "record": (lambda d: _jsonl(d / "seeds.jsonl", [{**SEEDS[0].model_dump(mode="json"), "schema_version": 0},
                                                    SEEDS[0].model_dump_json(), SEEDS[1].model_dump_json()]),
               ["scale2", "scale3"], "line 1: written with schema_version 0, this codestill reads 1"),
    "alpaca": (lambda d: _jsonl(d / "alpaca.jsonl", [
        {"instruction": "Scale xs by 2.", "input": "", "output": f"```python\n{SEEDS[0].code}```"},
        {"instruction": "Scale xs by 3.", "input": "", "output": SEEDS[1].code},
        {"instruction": "Print one.", "input": "", "output": "print(1)"}]),
               ["scale2", "scale3"], "line 3: the Code Alpaca \"output\" defines no top-level function"),
    "dataset": (lambda d: _dataset(d / "saved", [{"code": SEEDS[0].code}, {"code": "def scale(:"},
                                                 {"code": SEEDS[1].code}]),
                ["scale2", "scale3"], "row 1: \"code\" is not Python that parses"),
}


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory) -> Iterator[str]:
    knowledge = tmp_path_factory.mktemp("knowledge") / "seeds.jsonl"
    write_jsonl(knowledge, SEEDS)
    with serve_subprocess(SimConfig(knowledge=(str(knowledge),))) as url:
        yield url


def _reported(stderr: str, path: Path, problem: str) -> bool:
    return f"skipped: {path} {problem}" in " ".join(stderr.split())


def _mixed(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """The three JSONL instruction formats in one file (the reader takes each line as it comes), each
    with its malformed line: one ``generate`` run reads them all. The problems, renumbered."""
    lines: list[str] = []
    good: list[str] = []
    problems: list[str] = []
    for fmt in ("bare", "record", "alpaca"):
        write, instructions, problem = TASK_FORMATS[fmt]
        block = write(tmp_path).read_text().splitlines()
        number, rest = problem.removeprefix("line ").split(":", 1)
        problems.append(f"line {len(lines) + int(number)}:{rest}")
        lines += block
        good += instructions
    return _jsonl(tmp_path / "mixed.jsonl", lines), good, problems


@pytest.mark.parametrize("fmt", ["jsonl", "dataset"])
def test_generate_and_evolve_read_every_instruction_format(fmt, sim_url, tmp_path):
    """jsonl: bare instructions, Task records and Code Alpaca lines in one file; dataset: a saved folder."""
    if fmt == "dataset":
        pytest.importorskip("datasets")
        write, good, problem = TASK_FORMATS["dataset"]
        seeds, problems = write(tmp_path), [problem]
    else:
        seeds, good, problems = _mixed(tmp_path)
    model = ["--model", f"openai:codestill-sim@{sim_url}"]

    run = tmp_path / "run"
    done = _run("generate", "--seeds", str(seeds), "--out", str(run), *model, "--set",
                f"memory.path={tmp_path / 'memory'}", "--set", "sandbox.pool_size=2", "--json")
    assert done.returncode == 0, done.stderr
    assert all(_reported(done.stderr, seeds, p) for p in problems), done.stderr
    solved = [t.task for t in RunDir(run).trajectories().trajectories]
    assert sorted(t.instruction for t in solved) == sorted(good)
    stats = json.loads((run / "stats.json").read_text())
    assert stats["inputs"]["total"] == len(good) and len(stats["bad_lines"]) == len(problems)
    assert all(p in bad for p, bad in zip(problems, stats["bad_lines"], strict=True))

    out = tmp_path / "evolved.jsonl"
    done = _run("evolve", "--seeds", str(seeds), "--out", str(out), "--rounds", "1", *model, "--json")
    assert done.returncode == 0, done.stderr
    assert all(_reported(done.stderr, seeds, p) for p in problems), done.stderr
    originals = [t.instruction for t in read_jsonl(out, Task) if not t.origin or t.origin.round == 0]
    assert originals == good
    bad = json.loads(done.stdout)["bad_lines"]
    assert [b.startswith(f"{seeds} {p}") for b, p in zip(bad, problems, strict=True)] == [True] * len(problems)


@pytest.mark.parametrize("fmt", list(SEED_FORMATS))
def test_instruct_reads_every_seed_function_format(fmt, sim_url, tmp_path):
    if fmt == "dataset":
        pytest.importorskip("datasets")
    write, good, problem = SEED_FORMATS[fmt]
    seeds = write(tmp_path)
    out = tmp_path / "ins.jsonl"
    done = _run("instruct", "--seeds", str(seeds), "--out", str(out), "--model", f"openai:codestill-sim@{sim_url}",
                "--json")
    assert done.returncode == 0, done.stderr
    assert _reported(done.stderr, seeds, problem), done.stderr
    stats = json.loads(done.stdout)
    (bad,) = stats["bad_lines"]
    assert stats["seeds"] == 2 and bad.startswith(f"{seeds} {problem}")
    # instructions were written from the good seeds, each as the reader made it from its format
    read = read_inputs(seeds, "seed").items
    assert [s.name for s in read] == good
    written = list(read_jsonl(out, Task))
    assert stats["instructions"] == len(written) >= 2 and stats["seeds_without"] == 0
    assert {t.source for t in written} == {"selfalign"} and {t.lineage[0] for t in written} == {s.id for s in read}


def test_strict_refuses_a_seed_file_with_a_bad_line_before_any_model_call(tmp_path):
    seeds = TASK_FORMATS["bare"][0](tmp_path)
    for command, bad in (("evolve", 1), ("instruct", 3)):  # instruct wants functions: every instruction is bad
        done = _run(command, "--seeds", str(seeds), "--out", str(tmp_path / "o.jsonl"), "--strict",
                    "--model", "openai:m@http://127.0.0.1:9/v1")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert f"{bad} bad line(s), nothing started (--strict)" in done.stderr, done.stderr
        assert not (tmp_path / "o.jsonl").exists()
