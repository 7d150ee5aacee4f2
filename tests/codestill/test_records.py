"""Records round-trip through JSON, and files of another schema_version or malformed ones fail clearly."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from codestill.errors import RecordError, SchemaVersionError
from codestill.records import load_record, read_jsonl, write_json, write_jsonl
from codestill.schemas import (
    SCHEMA_VERSION,
    Attempt,
    ChatMessage,
    Critique,
    ExecResult,
    Module,
    ModuleSpec,
    Plan,
    Provenance,
    SFTRecord,
    Task,
    TestResult,
    TestSuite,
    Trajectory,
    Usage,
)


def _trajectory() -> Trajectory:
    task = Task(id="mbpp/2", instruction="Write a function to add two numbers.", entry_point="add",
                tests=TestSuite(code="assert add(1, 2) == 3"), source="mbpp")
    result = ExecResult(run_id="r1", status="failed",
                        tests=(TestResult(name="assert add(1, 2) == 3", outcome="failed", message="4 != 3"),))
    spec = ModuleSpec(name="add", signature="def add(a, b)", description="Sum.")
    return Trajectory(
        id="t1", task=task, plans=(Plan(steps=("Return a + b.",)),),
        modules=(Module(spec=spec, code="def add(a, b):\n    return a + b\n", verified=True, task_id="mbpp/2"),),
        attempts=(Attempt(code="def add(a, b):\n    return a - b\n", result=result,
                          critique=Critique(verdict="repair", issues=("sign",))),
                  Attempt(round=1, code="def add(a, b):\n    return a + b\n")),
        verdict="accepted", reason="all tests passed", usage=Usage(calls=3, prompt_tokens=10, completion_tokens=5))


def test_round_trip_and_derived_fields(tmp_path):
    t = _trajectory()
    path = tmp_path / "trajectories.jsonl"
    assert write_jsonl(path, [t, t]) == 2
    back = list(read_jsonl(path, Trajectory))
    assert back == [t, t] and back[0].schema_version == SCHEMA_VERSION
    assert back[0].critiques == (Critique(verdict="repair", issues=("sign",)),)
    assert (t.usage + Usage(calls=1, prompt_tokens=1)).total_tokens == 16
    write_json(tmp_path / "one.json", t)
    assert load_record(Trajectory, (tmp_path / "one.json").read_text()) == t


def test_feedback_starts_with_the_status_line():
    result = _trajectory().attempts[0].result
    assert result is not None
    fb = result.feedback()
    assert fb.splitlines()[0] == "status: failed"
    assert "tests: 0/1 passed" in fb and "- assert add(1, 2) == 3: failed: 4 != 3" in fb


def test_other_schema_version_is_refused_with_one_message(tmp_path):
    data = json.loads(_trajectory().model_dump_json())
    data["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "t.jsonl"
    path.write_text(_trajectory().model_dump_json() + "\n" + json.dumps(data) + "\n")
    with pytest.raises(SchemaVersionError, match=r"t.jsonl line 2: written with schema_version 2"):
        list(read_jsonl(path, Trajectory))


@pytest.mark.parametrize(("line", "needle"), [
    ("{not json", "line 1: not JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"schema_version": SCHEMA_VERSION, "id": "x"}), "not a valid Task: instruction"),
])
def test_malformed_lines(tmp_path, line, needle):
    path = tmp_path / "tasks.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RecordError, match=needle):
        list(read_jsonl(path, Task))


def test_missing_file():
    with pytest.raises(RecordError, match="cannot read"):
        list(read_jsonl(__import__("pathlib").Path("/nonexistent/x.jsonl"), Task))


def test_sft_record_must_end_with_the_answer():
    prov = Provenance(task_id="a", trajectory_id="t")
    ok = SFTRecord(id="s", task="plan", provenance=prov, messages=(
        ChatMessage(role="user", content="q"), ChatMessage(role="assistant", content="a")))
    assert ok.messages[-1].role == "assistant"
    with pytest.raises(ValidationError, match="last message"):
        SFTRecord(id="s", task="code", provenance=prov, messages=(
            ChatMessage(role="assistant", content="a"), ChatMessage(role="user", content="q")))
    with pytest.raises(ValidationError):
        ModuleSpec(name="not an identifier", signature="def f()")
