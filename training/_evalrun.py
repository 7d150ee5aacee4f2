"""An evaluation's output directory: what is on disk, how it resumes.

    DIR/config.json      the EvalConfig, what identifies its sampling, and the settings (secrets left
                         out), written at the start
    DIR/samples.jsonl    one SampleRecord per scored sample, appended as each one completes
    DIR/results.jsonl    one line per problem (n, c, passed flags, pass@k), written at the end
    DIR/summary.json     pass@k per k, the protocol, counts, excluded problems, written at the end

Resume: samples already in samples.jsonl are not generated again (a torn last line is ignored).
Samples hit by a sandbox infrastructure fault are not written, so a rerun scores them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from codestill.errors import ConfigError
from codestill.records import JsonlAppender, read_appended
from codestill.schemas import ExecResult

SAMPLES, RESULTS, SUMMARY, CONFIG = "samples.jsonl", "results.jsonl", "summary.json", "config.json"
MAX_FAILURES = 5  # failing tests kept per sample


class Candidate(BaseModel):
    """Plan sampling: one plan, the code written for it, and how it did on the public test."""

    model_config = ConfigDict(extra="forbid")

    plan: str
    code: str
    public_status: str


class SampleRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem: str
    index: int
    passed: bool
    status: str  # ExecResult status, or "gen_error" when the model gave nothing to run
    message: str = ""
    failures: list[dict[str, str]] = []
    tests_passed: int = 0
    tests_total: int = 0
    code: str
    reply: str = ""
    candidates: list[Candidate] = []
    chosen: int | None = None


def sample_record(problem: str, index: int, code: str, reply: str, result: ExecResult | None,
                  gen_error: str | None = None, **extra: Any) -> SampleRecord:
    if result is None:
        return SampleRecord(problem=problem, index=index, passed=False, status="gen_error",
                            message=gen_error or "", code=code, reply=reply, **extra)
    failures = [{"test": t.name, "outcome": t.outcome, "message": t.message[:500]}
                for t in result.tests if t.outcome != "passed"][:MAX_FAILURES]
    return SampleRecord(problem=problem, index=index, passed=result.passed, status=result.status,
                        message=result.message[:1000], failures=failures, tests_passed=result.n_passed,
                        tests_total=len(result.tests), code=code, reply=reply, **extra)


def read_samples(out: Path) -> dict[tuple[str, int], SampleRecord]:
    """The samples of an earlier run (a line torn by an interruption: that sample is generated again)."""
    return {(rec.problem, rec.index): rec for rec in read_appended(out / SAMPLES, SampleRecord)}


def check_same_run(out: Path, identity: dict[str, Any]) -> None:
    """A directory may only be resumed by an evaluation that samples the same way: same model,
    benchmark, prompt style, temperatures, plan sampling, token budget and seed (``identity``). More
    samples (--n), other k, --limit or --ids are fine: they only change which samples are wanted."""
    path = out / CONFIG
    if not path.is_file():
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"{out} exists and is not an evaluation's output directory; give another --out")
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))["identity"]
        if not isinstance(old, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path}: not an evaluation's config.json; give another --out") from None
    differ = [f"{key} {old.get(key)!r} -> {value!r}" for key, value in identity.items() if old.get(key) != value]
    if differ:
        raise ConfigError(f"{out} holds an evaluation that sampled differently ({'; '.join(differ)}); resume it "
                          "with the same settings, or give another --out")


# One JSON line per sample, flushed; a torn last line of an earlier run is closed first.
SampleWriter = JsonlAppender


def write_json(path: Path, value: Any) -> None:
    """Write whole or not at all: a temporary file renamed over the target."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)
