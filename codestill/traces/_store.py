"""The read API: open a store read-only (while a writer may be running) and list runs or load one tree."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from codestill.errors import TraceStoreError
from codestill.traces._codec import decode
from codestill.traces._models import RunSummary, Span, SpanStatus, SpanTree
from codestill.traces._schema import open_reader

_ID = re.compile(r"[0-9a-f-]{1,36}")
_CHUNK = 500  # ids per IN (...) query, well under SQLite's bound on parameters
_SPAN_COLS = ("id, trace_id, parent_id, writer, kind, name, node, task_id, status, start, end, model, "
              "prompt_tokens, completion_tokens, error, verdict")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (the viewer's index asks the same)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _decoded(blob: bytes | None) -> Any:
    try:
        return decode(blob)
    except Exception as e:  # one damaged payload must not hide the rest of the tree
        return {"undecodable": repr(e)}


class TraceStore:
    """A trace store opened read-only. Missing or foreign files raise ``TraceStoreError``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = open_reader(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.Error as e:
            raise TraceStoreError(f"reading trace store {self.path} failed ({e}); "
                                  "check the file is a complete copy, or write a new store.") from None

    def _live_writers(self, conn: sqlite3.Connection) -> set[int]:
        """Writers whose spans may still end: not closed, and their process exists (or is elsewhere)."""
        host = socket.gethostname()
        return {wid for wid, pid, whost, closed in conn.execute("SELECT id, pid, host, closed FROM writers")
                if closed is None and (whost != host or pid_alive(pid))}

    @staticmethod
    def _status(status: str, writer: int, live: set[int]) -> SpanStatus:
        if status == "running" and writer not in live:
            return "unfinished"
        return status  # type: ignore[return-value]  # the writer stores only running | ok | error

    def list_runs(self, limit: int = 20) -> list[RunSummary]:
        """The newest ``limit`` root runs, newest first, with totals over their spans."""
        with self._reading() as conn:
            live = self._live_writers(conn)
            roots = conn.execute("SELECT id, name, task_id, status, writer, start, end, verdict FROM spans "
                                 "WHERE parent_id IS NULL ORDER BY start DESC LIMIT ?", (limit,)).fetchall()
            totals: dict[str, tuple[int, int, int]] = {}
            ids = [r[0] for r in roots]
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                for trace, spans, tokens, llm in conn.execute(
                        "SELECT trace_id, count(*), coalesce(sum(prompt_tokens), 0) + "
                        "coalesce(sum(completion_tokens), 0), sum(kind = 'llm') FROM spans "
                        f"WHERE trace_id IN ({','.join('?' * len(chunk))}) GROUP BY trace_id", chunk):
                    totals[trace] = (spans, tokens, llm)
        out = []
        for rid, name, task, status, writer, start, end, verdict in roots:
            spans, tokens, llm = totals.get(rid, (1, 0, 0))
            out.append(RunSummary(id=rid, graph=name, task_id=task, status=self._status(status, writer, live),
                                  start=_time(start), duration_s=None if end is None else end - start,
                                  tokens=tokens, llm_calls=llm, verdict=verdict, spans=spans))
        return out

    def resolve(self, run: str) -> str:
        """The full id of a run given as its id, a unique prefix, or the short id ``ls`` prints."""
        key = run.strip().lower()
        if not _ID.fullmatch(key):
            raise TraceStoreError(f"{run!r} is not a run id; `codestill traces ls` lists the runs.")
        with self._reading() as conn:
            if conn.execute("SELECT 1 FROM spans WHERE id=?", (key,)).fetchone():
                return key
            # Roots first: a short id is meant to name a run, not one of its spans.
            for where in ("parent_id IS NULL AND", ""):
                found = [r[0] for r in conn.execute(
                    f"SELECT id FROM spans WHERE {where} (id LIKE ? OR id LIKE ?) LIMIT 6",
                    (key + "%", "%" + key))]
                if len(found) == 1:
                    return str(found[0])
                if found:
                    shown = ", ".join("…" + f[-12:] for f in found[:5])
                    shown += ", …" if len(found) > 5 else ""
                    raise TraceStoreError(f"{run!r} matches several runs ({shown}); "
                                          "give more characters of the id.")
        raise TraceStoreError(f"no run {run!r} in {self.path}; `codestill traces ls` lists the runs.")

    def span(self, span_id: str) -> Span:
        """One span by its full id, payloads decoded, without its children: what a lazily opened
        span in the viewer needs, however large its trace."""
        if not _ID.fullmatch(span_id):
            raise TraceStoreError(f"{span_id!r} is not a span id; copy it from the run's page or `traces show`.")
        with self._reading() as conn:
            live = self._live_writers(conn)
            row = conn.execute(f"SELECT {_SPAN_COLS}, inputs, outputs, extra FROM spans WHERE id=?",
                               (span_id,)).fetchone()
        if row is None:
            raise TraceStoreError(f"no span {span_id!r} in {self.path}; the link may come from another store.")
        return self._span(row, live)

    def _span(self, row: tuple[Any, ...], live: set[int]) -> Span:
        (sid, trace_id, parent, writer, kind, name, node, task, status, start, end, model,
         prompt, completion, error, verdict, *blobs) = row
        inputs, outputs, extra = (_decoded(b) for b in blobs) if blobs else (None, None, None)
        return Span(
            id=sid, trace_id=trace_id, parent_id=parent, kind=kind, name=name, node=node, task_id=task,
            status=self._status(status, writer, live), start=_time(start),
            end=None if end is None else _time(end), duration_s=None if end is None else end - start,
            model=model, prompt_tokens=prompt, completion_tokens=completion, error=error, verdict=verdict,
            inputs=inputs, outputs=outputs, extra=extra)

    def tree(self, run: str, *, payloads: bool = True) -> SpanTree:
        """The span tree under ``run`` (id, prefix or short id); ``payloads=False`` skips decoding them."""
        rid = self.resolve(run)
        cols = _SPAN_COLS + (", inputs, outputs, extra" if payloads else "")
        with self._reading() as conn:
            live = self._live_writers(conn)
            (trace,) = conn.execute("SELECT trace_id FROM spans WHERE id=?", (rid,)).fetchone()
            rows = conn.execute(f"SELECT {cols} FROM spans WHERE trace_id=? ORDER BY start, rowid",
                                (trace,)).fetchall()
        spans = {row[0]: self._span(row, live) for row in rows}
        for span in spans.values():
            if span.parent_id is not None and (parent_span := spans.get(span.parent_id)) is not None:
                parent_span.children.append(span)
        root = spans[rid]
        count, stack = 0, [root]
        while stack:
            count += 1
            stack.extend(stack.pop().children)
        return SpanTree(root=root, spans=count)
