"""`codestill traces export`: OTLP/JSON read back with the proto classes, plain JSONL, Markdown; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codestill.errors import TraceExportError
from codestill.traces import TraceStore
from codestill.traces.export import export_jsonl, export_markdown, export_otlp, read_otlp
from tests.codestill.traces.conftest import run_graphs
from tests.codestill.traces.graphs import COMPLETION_TOKENS, PROMPT_TOKENS, SPANS_PER_RUN, SYSTEM

ROOT = Path(__file__).resolve().parents[3]
SECRET = "sk-live-0123456789abcdef"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "traces.sqlite"
    # The secret is in the task, so it reaches the prompt, the node states and the tool's input.
    run_graphs(path, [f"mbpp/11 with key {SECRET}", "mbpp/12"], redact=[SECRET])
    return path


@pytest.fixture(scope="module")
def trees(store: Path) -> list[Any]:
    with TraceStore(store) as traces:
        return [traces.tree(r.id) for r in traces.list_runs()]


def _attrs(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.values] if kind == "array_value" else value
    return out


def test_otlp_spans_follow_the_genai_conventions_and_keep_the_tree(trees, tmp_path):
    out = tmp_path / "runs.otlp.jsonl"
    assert export_otlp(trees, out) == 2 * SPANS_PER_RUN
    requests = read_otlp(out)
    assert len(requests) == 2 == len(out.read_text().splitlines())
    for request, tree in zip(requests, trees, strict=True):
        spans = list(request.resource_spans[0].scope_spans[0].spans)
        assert len(spans) == tree.spans
        by_id = {s.span_id: s for s in spans}
        roots = [s for s in spans if not s.parent_span_id]
        assert len(roots) == 1 and len({s.trace_id for s in spans}) == 1
        assert roots[0].trace_id.hex() == tree.root.id.replace("-", "")
        for s in spans:  # every parent is in the file, and a child starts within its parent's time
            if s.parent_span_id:
                parent = by_id[s.parent_span_id]
                assert parent.start_time_unix_nano <= s.start_time_unix_nano <= s.end_time_unix_nano
                assert s.end_time_unix_nano <= parent.end_time_unix_nano
        root = _attrs(roots[0])
        assert root["gen_ai.operation.name"] == "invoke_workflow" and root["gen_ai.workflow.name"] == "solve"
        assert roots[0].name == "invoke_workflow solve" and root["codestill.verdict"] == "accepted"
        (llm,) = [s for s in spans if s.kind == s.SPAN_KIND_CLIENT]
        a = _attrs(llm)
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"]
        assert a["gen_ai.usage.input_tokens"] == PROMPT_TOKENS and a["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
        assert a["gen_ai.response.model"] == "fake-planner" and a["codestill.node"] == "planner"
        assert llm.name.startswith("chat")
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content is opt-in
        ops = {_attrs(s).get("gen_ai.operation.name") for s in spans}
        assert {"execute_tool", "retrieval"} <= ops
        assert all("codestill.inputs" not in _attrs(s) for s in spans)
    # Deterministic ids: exporting again gives the same file.
    again = tmp_path / "again.jsonl"
    export_otlp(trees, again)
    assert again.read_bytes() == out.read_bytes()


def test_otlp_content_only_when_asked_and_never_a_secret(trees, tmp_path):
    out = tmp_path / "content.jsonl"
    export_otlp(trees, out, include_content=True)
    text = out.read_text()
    assert SECRET not in text and "[redacted]" in text
    request = next(r for r in read_otlp(out) if "[redacted]" in str(r))
    (llm,) = [s for s in request.resource_spans[0].scope_spans[0].spans if s.kind == s.SPAN_KIND_CLIENT]
    a = _attrs(llm)
    inputs, outputs = json.loads(a["gen_ai.input.messages"]), json.loads(a["gen_ai.output.messages"])
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[0]["parts"] == [{"type": "text", "content": SYSTEM}]
    assert "key [redacted]" in inputs[1]["parts"][0]["content"]
    assert outputs[0]["role"] == "assistant" and outputs[0]["parts"][0]["content"] == "1. write add\n2. test it"


def test_jsonl_records_and_markdown_transcript(trees, tmp_path):
    plain, full, md = tmp_path / "plain.jsonl", tmp_path / "full.jsonl", tmp_path / "runs.md"
    assert export_jsonl(trees, plain) == export_jsonl(trees, full, include_content=True) == 2 * SPANS_PER_RUN
    records = [json.loads(line) for line in plain.read_text().splitlines()]
    assert len(records) == 2 * SPANS_PER_RUN and not any("inputs" in r for r in records)
    ids = {r["id"] for r in records}
    assert all(r["parent_id"] in ids for r in records if r["parent_id"])
    assert {r["kind"] for r in records} == {"graph", "node", "llm", "retriever", "chain", "tool"}
    assert any(r["kind"] == "llm" and r["prompt_tokens"] == PROMPT_TOKENS for r in records)
    assert any("inputs" in json.loads(line) for line in full.read_text().splitlines())
    assert export_markdown(trees, md) == 2
    text = md.read_text()
    for expected in ("# solve run", "## Steps", "### planner", "*system:*", SYSTEM, "*reply:*", "1. write add",
                     "key [redacted]", "## Verdict", "**LLM call 1**"):
        assert expected in text, expected
    assert SECRET not in text + full.read_text()


def test_a_failed_export_leaves_nothing(trees, tmp_path):
    out = tmp_path / "runs.otlp.jsonl"
    out.write_text("old\n")

    class Boom(Exception):
        pass

    def broken() -> Any:
        yield trees[0]
        raise Boom

    with pytest.raises(Boom):
        export_markdown(_Lazy(broken()), out)
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == [out.name]
    with pytest.raises(TraceExportError, match="is a directory"):
        export_jsonl(trees, tmp_path)


class _Lazy(list):  # type: ignore[type-arg]
    """A sequence whose iteration fails part-way, like a store read that breaks."""

    def __init__(self, it: Any) -> None:
        super().__init__()
        self._it = it

    def __iter__(self) -> Any:
        return self._it

    def __len__(self) -> int:
        return 2


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from codestill.cli import main; main()", "traces", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


def test_cli_exports_short_ids_to_every_format(store, trees, tmp_path):
    short = [t.root.id[-8:] for t in trees]
    otlp, jsonl, md = tmp_path / "a.otlp.jsonl", tmp_path / "a.jsonl", tmp_path / "a.md"
    done = cli("export", *short, "--store", str(store), "--otlp", str(otlp), "--jsonl", str(jsonl),
               "--markdown", str(md))
    assert done.returncode == 0, done.stderr
    assert "exported 2 runs without message content" in done.stderr
    assert len(read_otlp(otlp)) == 2 and len(jsonl.read_text().splitlines()) == 2 * SPANS_PER_RUN
    assert md.read_text().count("# solve run") == 2


@pytest.mark.parametrize(("args", "message"), [
    (["0000dead", "--otlp", "x.jsonl"], "no run '0000dead'"),
    (["{short}"], "nothing to export to; give --otlp FILE"),
])
def test_cli_errors_are_one_line(store, trees, tmp_path, args, message):
    args = [a.replace("{short}", trees[0].root.id[-8:]).replace("x.jsonl", str(tmp_path / "x.jsonl"))
            for a in args]
    done = cli("export", *args, "--store", str(store))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.jsonl").exists()
