"""Exporting runs out of the trace store, for other tools and for people.

    export_otlp(trees, "runs.otlp.jsonl")          OpenTelemetry (OTLP/JSON, GenAI conventions): Langfuse,
                                                    Phoenix, an OTel Collector's otlpjsonfile receiver
    export_jsonl(trees, "spans.jsonl")             one plain JSON record per span
    export_markdown(trees, "runs.md")              a readable transcript to paste into a chat

Message content (prompts, replies, the graph's inputs and outputs) goes into the OTLP and JSONL files
only with ``include_content=True``, as the GenAI conventions make it opt-in; a transcript is content.
Secrets were replaced when the spans were stored, so no export can hold them. Every file is written
whole under a temporary name and then renamed: a failed export leaves no half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from codestill.errors import TraceExportError
from codestill.traces import _otlp
from codestill.traces._models import Span, SpanTree
from codestill.traces._transcript import transcript

_CONTENT = ("inputs", "outputs")



def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` (each ended with a newline) to ``path`` atomically: all of them, or nothing."""
    path = Path(path)
    if path.is_dir():
        raise TraceExportError(f"{path} is a directory; give a file name such as {path / 'traces.jsonl'}.")
    # A name of this process's own beside the target (same file system, so the rename is atomic);
    # opened like any new file, so it gets the usual permissions.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(tmp, "w", encoding="utf-8")  # noqa: SIM115  (closed below, before the rename)
    except OSError as e:
        raise TraceExportError(f"cannot write {path} ({e.strerror}); choose a writable path.") from None
    try:
        with f:
            for line in lines:
                f.write(line + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _version() -> str:
    try:
        return version("codestill")
    except PackageNotFoundError:
        return ""


def span_record(span: Span, *, include_content: bool = False) -> dict[str, Any]:
    """One span as a plain JSON-ready record (its children as ids, its run as ``run_id``)."""
    record = span.model_dump(mode="json", exclude={"children"})
    record["run_id"] = span.trace_id
    record["children"] = [c.id for c in span.children]
    if not include_content:
        for key in _CONTENT:
            record.pop(key, None)
    return record


def export_otlp(trees: Sequence[SpanTree], path: Path, *, include_content: bool = False) -> int:
    """One OTLP/JSON ``ExportTraceServiceRequest`` per run, one per line; returns the spans written."""
    release = _version()
    write_lines(path, (_otlp.to_json(_otlp.request(t, include_content=include_content, version=release))
                       for t in trees))
    return sum(t.spans for t in trees)


def export_jsonl(trees: Sequence[SpanTree], path: Path, *, include_content: bool = False) -> int:
    """Every span of every run as one JSON line, parents before children; returns the spans written."""
    write_lines(path, (orjson.dumps(span_record(s, include_content=include_content)).decode()
                       for t in trees for s in t.walk()))
    return sum(t.spans for t in trees)


def export_markdown(trees: Sequence[SpanTree], path: Path) -> int:
    """A transcript per run, separated by rules; returns the runs written."""
    def lines() -> Iterable[str]:
        for i, tree in enumerate(trees):
            if i:
                yield from ("---", "")
            yield from transcript(tree)
    write_lines(path, lines())
    return len(trees)


def read_otlp(path: Path) -> list[ExportTraceServiceRequest]:
    """An OTLP/JSON file (one request per line, hex ids) back as protobuf messages."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(_otlp.from_json(line))
                except Exception as e:  # json and protobuf errors alike: name the line
                    raise TraceExportError(f"{path} line {n} is not an OTLP/JSON trace request ({e}).") from None
    except OSError as e:
        raise TraceExportError(f"cannot read {path} ({e.strerror}); check the path.") from None
    return out
