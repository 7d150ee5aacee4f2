"""The writer thread: owns the SQLite connection, turns queued events into rows, one transaction a batch.

Events arrive in callback order on one deque, so a parent's start is always seen before its
children's: the trace id of a child is its parent's, looked up in the map of open runs.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from codestill.errors import TraceStoreError
from codestill.traces import _rows
from codestill.traces._codec import Codec
from codestill.traces._schema import open_writer

START, END, LLM_END, ERROR = 0, 1, 2, 3
# Commit at least this often, so a reader (or a crash) never misses more than this much.
INTERVAL_S = 0.025
_MAX_BATCH = 4000

_log = logging.getLogger("codestill.traces")

# Many rows per statement: sqlite3 releases and retakes the GIL around every statement step, and each
# retake while the event loop is busy waits out a switch interval. Chunks stay under 999 parameters,
# the bound of older SQLite builds.
_COLUMNS = ("id, trace_id, parent_id, writer, kind, name, node, task_id, status, start, end, model, "
            "prompt_tokens, completion_tokens, error, verdict, inputs, outputs, extra")
_INSERT_ROWS = 50  # x 19 columns
_UPDATE_ROWS = 100  # x 9 values
# One row's update, for SQLite older than 3.33 (no UPDATE ... FROM).
_UPDATE = ("UPDATE spans SET status=?, end=?, model=COALESCE(?, model), prompt_tokens=?, "
           "completion_tokens=?, error=?, verdict=?, outputs=? WHERE id=?")
_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33)


def _insert_sql(rows: int) -> str:
    return f"INSERT OR REPLACE INTO spans ({_COLUMNS}) VALUES " + ",".join(["(" + "?," * 18 + "?)"] * rows)


def _update_sql(rows: int) -> str:
    values = ",".join(["(?,?,?,?,?,?,?,?,?)"] * rows)
    return ("UPDATE spans SET status=v.column1, end=v.column2, model=COALESCE(v.column3, spans.model), "
            "prompt_tokens=v.column4, completion_tokens=v.column5, error=v.column6, verdict=v.column7, "
            f"outputs=v.column8 FROM (VALUES {values}) AS v WHERE spans.id=v.column9")


# Positions in an INSERT row that an end fills in (in _UPDATE's order, model first after end).
_ROW_STATUS, _ROW_END, _ROW_MODEL, _ROW_OUTPUTS = 8, 10, 11, 17


@dataclass(frozen=True)
class TracerStats:
    written: int  # spans whose start row is committed
    errors: int  # events or batches the writer could not store (logged)
    dropped: int  # events traced after close()
    pending: int  # events queued, not yet written


@dataclass
class _Open:
    trace_id: str
    is_root: bool
    kind: str


class Writer:
    """Drains ``events`` every INTERVAL_S on its own thread; ``close()`` writes the rest and stops."""

    def __init__(self, path: Path, redact: Sequence[str]) -> None:
        self.events: deque[Any] = deque()
        self._codec = Codec(redact)
        self._conn = open_writer(path)
        try:
            # Readers call a "running" span "unfinished" once this process is gone or has closed.
            cur = self._conn.execute("INSERT INTO writers (pid, host, started) VALUES (?, ?, ?)",
                                     (os.getpid(), socket.gethostname(), time.time()))
        except sqlite3.Error as e:
            self._conn.close()
            raise TraceStoreError(f"cannot write to trace store {path} ({e}); choose a writable path."
                                  ) from None
        self._id = cur.lastrowid
        self._open: dict[UUID, _Open] = {}
        self._written = self._errors = self._dropped = 0
        self._seen_errors: set[type[BaseException]] = set()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="codestill-trace-writer", daemon=True)
        self._thread.start()

    # ---- called from other threads ------------------------------------------------------------

    def stats(self) -> TracerStats:
        return TracerStats(self._written, self._errors, self._dropped, len(self.events))

    def drop(self, event: Any) -> None:
        """Stands in for ``events.append`` once closed."""
        self._dropped += 1

    def flush(self, timeout: float | None) -> bool:
        if not self._thread.is_alive():
            return not self.events
        done = threading.Event()
        self.events.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._closing = True
            self._wake.set()
            self._thread.join(60.0)
            if self._thread.is_alive():
                _log.warning("trace writer did not finish within 60 s; %d events unwritten", len(self.events))

    # ---- the writer thread --------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._wake.wait(INTERVAL_S)
            self._wake.clear()
            closing = self._closing
            try:
                while self.events:
                    self._batch()
            except Exception as e:  # the thread must outlive any failure, or the queue grows forever
                self._failed(e, "writing a batch")
            if closing:
                break
        try:
            self._conn.execute("UPDATE writers SET closed=? WHERE id=?", (time.time(), self._id))
            self._conn.close()
        except sqlite3.Error as e:
            self._failed(e, "closing the store")

    def _failed(self, error: BaseException, doing: str) -> None:
        self._errors += 1
        # The first failure of a kind is a warning; repeats would flood the log at span rate.
        level = logging.DEBUG if type(error) in self._seen_errors else logging.WARNING
        self._seen_errors.add(type(error))
        _log.log(level, "trace store: %s failed: %r", doing, error)

    def _batch(self) -> None:
        inserts: dict[UUID, list[Any]] = {}
        updates: list[tuple[Any, ...]] = []
        flushes: list[threading.Event] = []
        pop = self.events.popleft
        for _ in range(_MAX_BATCH):
            try:
                event = pop()
            except IndexError:
                break
            if isinstance(event, threading.Event):
                flushes.append(event)
                continue
            try:
                if event[0] == START:
                    inserts[event[1]] = self._start_row(event, inserts)
                else:
                    self._end(event, inserts, updates)
            except Exception as e:  # one odd event must not cost the batch
                self._failed(e, "recording a span")
        try:
            self._write(list(inserts.values()), updates)
            self._written += len(inserts)
        except sqlite3.Error as e:
            self._failed(e, f"writing {len(inserts)} spans and {len(updates)} ends")
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            for done in flushes:
                done.set()

    def _write(self, rows: list[list[Any]], ends: list[tuple[Any, ...]]) -> None:
        """One transaction: the new spans, then the ends of spans written in earlier batches."""
        execute = self._conn.execute
        execute("BEGIN")
        for i in range(0, len(rows), _INSERT_ROWS):
            chunk = rows[i:i + _INSERT_ROWS]
            execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])
        if _UPDATE_FROM:
            for i in range(0, len(ends), _UPDATE_ROWS):
                some = ends[i:i + _UPDATE_ROWS]
                execute(_update_sql(len(some)), [v for end in some for v in end])
        else:
            self._conn.executemany(_UPDATE, ends)
        execute("COMMIT")

    def _encode(self, payload: Any) -> bytes | None:
        try:
            return self._codec.encode(payload)
        except Exception as e:  # e.g. a cycle or a 100-digit int: keep the span, describe the payload
            self._failed(e, "encoding a payload")
            try:
                text = repr(payload)[:65536]
            except Exception:  # a broken __repr__ too: the type name is all there is
                text = f"<{type(payload).__name__}>"
            return self._codec.encode({"unencodable": text, "error": repr(e)})

    def _trace_of(self, parent: UUID | None, inserts: dict[UUID, list[Any]]) -> str | None:
        """The trace a parent belongs to, or None when the parent is unknown to this store."""
        if parent is None:
            return None
        if (run := self._open.get(parent)) is not None:
            return run.trace_id
        if (row := inserts.get(parent)) is not None:
            return str(row[1])
        # A child that outlives its parent (a background task): the parent's row is on disk.
        found = self._conn.execute("SELECT trace_id FROM spans WHERE id=?", (str(parent),)).fetchone()
        return None if found is None else str(found[0])

    def _start_row(self, event: tuple[Any, ...], inserts: dict[UUID, list[Any]]) -> list[Any]:
        _, run_id, parent, kind, name, serialized, inputs, metadata, tags, t, params = event
        rid = str(run_id)
        trace_id = self._trace_of(parent, inserts)
        is_root = trace_id is None
        metadata = metadata or {}
        node = metadata.get("langgraph_node")
        name = _rows.span_name(name, serialized, kind)
        kind = _rows.span_kind(kind, name, node, is_root, tags)
        self._open[run_id] = _Open(rid if is_root else str(trace_id), is_root, kind)
        task = metadata.get("task_id")
        extra = _rows.extra(metadata, tags, params)
        if is_root and parent is not None:  # keep the link to a parent this store never saw
            extra = {**(extra or {}), "external_parent": str(parent)}
        c = self._codec
        return [rid, rid if is_root else trace_id, None if is_root else str(parent), self._id, kind,
                c.text(name), c.text(node), c.text(None if task is None else str(task)), "running", t, None,
                c.text(_rows.request_model(metadata, params)), None, None, None, None,
                self._encode(inputs), None, self._encode(extra)]

    def _end(self, event: tuple[Any, ...], inserts: dict[UUID, list[Any]],
             updates: list[tuple[Any, ...]]) -> None:
        code, run_id, value, t = event
        run = self._open.pop(run_id, None) or _Open("", False, "chain")
        model = prompt = completion = error = verdict = None
        status = "ok"
        if code == ERROR:
            status = "error"
            error, outputs = _rows.error_parts(value)
        elif code == LLM_END:
            outputs, model, prompt, completion = _rows.llm_reply(value)
        else:
            outputs = value
            if run.is_root and run.kind == "graph":
                verdict = _rows.verdict(value)
        c = self._codec
        values = (status, t, c.text(model), prompt, completion, c.text(error), c.text(verdict),
                  self._encode(outputs))
        row = inserts.get(run_id)
        if row is None:
            updates.append((*values, str(run_id)))
        else:  # started in this same batch: one INSERT carries both
            row[_ROW_STATUS], row[_ROW_END] = status, t
            if model is not None:
                row[_ROW_MODEL] = values[2]
            row[12:16] = values[3:7]
            row[_ROW_OUTPUTS] = values[7]
