"""The trace store: every graph run's spans (graph, node, LLM call, tool, retriever) in one SQLite file.

Writing: ``SqliteTracer(path, redact=[api_key])`` is a LangChain tracer; pass it as
``config={"callbacks": [tracer]}``. Its callbacks only queue references; a writer thread owns the
file (WAL), encodes payloads (orjson, zlib past ~2 KiB, secrets replaced) and commits every ~25 ms.
A span is stored as "running" when it starts and completed when it ends, so a killed process
leaves a readable store whose cut-off runs read as "unfinished".

Reading: ``TraceStore(path)`` opens the file read-only, also while a writer is active:
``list_runs(limit)`` -> ``RunSummary`` rows for `codestill traces ls`, ``tree(run)`` -> ``SpanTree``.
"""

from codestill.traces._merge import merge_stores
from codestill.traces._models import RunSummary, Span, SpanKind, SpanStatus, SpanTree
from codestill.traces._store import TraceStore
from codestill.traces._tracer import SqliteTracer
from codestill.traces._writer import TracerStats

__all__ = ["RunSummary", "Span", "SpanKind", "SpanStatus", "SpanTree", "SqliteTracer", "TraceStore",
           "TracerStats", "merge_stores"]
