"""The runs index: a sidecar SQLite file next to the trace store, so listing, filtering and full-text
search stay fast at 100,000 runs while the store itself is only ever opened read-only.

One row per root span (keyed by its rowid in the store) with the columns the runs list filters and
sorts on, an FTS5 table over each finished run's text (prompts, code, errors), and one row per LLM
call for the dashboard's percentiles. ``refresh()`` is incremental: it reads only roots newer than
the last one it saw, plus the runs that were still running last time. Each chunk commits in one
transaction together with the point it reached, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codestill.errors import TraceStoreError
from codestill.traces._codec import decode
from codestill.traces._schema import open_reader
from codestill.traces._store import pid_alive
from codestill.traces.viewer._extract import run_facts

INDEX_VERSION = 1
_CHUNK = 400
# A store changing under a busy page is checked at most this often.
_REFRESH_EVERY_S = 1.0

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS runs (
    rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, trace_id TEXT NOT NULL, graph TEXT NOT NULL,
    task_id TEXT, status TEXT NOT NULL, writer INTEGER NOT NULL, start REAL NOT NULL, end REAL,
    duration REAL, verdict TEXT, reason TEXT, reason_kind TEXT, model TEXT, tokens INTEGER NOT NULL,
    llm_calls INTEGER NOT NULL, spans INTEGER NOT NULL, attempts INTEGER NOT NULL, plans INTEGER NOT NULL,
    passed INTEGER NOT NULL, error TEXT, final INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runs_start ON runs(start);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, start);
CREATE INDEX IF NOT EXISTS runs_verdict ON runs(verdict, start);
CREATE INDEX IF NOT EXISTS runs_reason ON runs(reason_kind, start);
CREATE INDEX IF NOT EXISTS runs_graph ON runs(graph, start);
CREATE INDEX IF NOT EXISTS runs_model ON runs(model, start);
CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id, start);
CREATE INDEX IF NOT EXISTS runs_duration ON runs(duration);
CREATE INDEX IF NOT EXISTS runs_tokens ON runs(tokens);
CREATE INDEX IF NOT EXISTS runs_pending ON runs(final) WHERE final = 0;
CREATE VIRTUAL TABLE IF NOT EXISTS runs_fts USING fts5(body, content='', tokenize="unicode61 tokenchars '_'");
CREATE TABLE IF NOT EXISTS llm (rid INTEGER NOT NULL, agent TEXT NOT NULL, start REAL NOT NULL,
    duration REAL, tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS llm_duration ON llm(agent, duration);
CREATE INDEX IF NOT EXISTS llm_tokens ON llm(agent, tokens);
"""

_ROOT_COLS = "rowid, id, trace_id, name, task_id, status, writer, start, end, verdict, error"
Progress = Callable[[int, int], None]


def default_index_path(store: Path) -> Path:
    """Next to the store when its folder is writable; else a per-store file in the temp folder."""
    beside = store.with_name(store.stem + ".viewer.sqlite")
    if beside.exists() or _writable(store.parent):
        return beside
    digest = hashlib.sha1(str(store.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "codestill-viewer" / f"{digest}.sqlite"


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".codestill-probe-"):
            return True
    except OSError:
        return False


def _decoded(blob: bytes | None) -> Any:
    try:
        return decode(blob)
    except Exception:  # a damaged payload costs its run's search text, not the index
        return None


class RunIndex:
    """The sidecar index of one store. Thread-safe: pages are served from a thread pool."""

    def __init__(self, store: Path, index_path: Path | None = None) -> None:
        self.store_path = store
        self.store = open_reader(store, any_thread=True)
        self.path = index_path or default_index_path(store)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                        timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._prepare()
        except (OSError, sqlite3.Error) as e:
            self.store.close()
            raise TraceStoreError(f"cannot write the viewer's index {self.path} ({e}); delete it, or make "
                                  "its folder writable.") from None
        self.lock = threading.RLock()
        self._checked = 0.0
        self._data_version = -1
        self.generation = 0  # grows whenever a refresh took in runs: what caches of index reads key on

    def close(self) -> None:
        self.conn.close()
        self.store.close()

    def _identity(self) -> str:
        """What tells this store from another file at the same path: its first writer's start time."""
        row = self.store.execute("SELECT started FROM writers ORDER BY id LIMIT 1").fetchone()
        return f"{self.store_path.resolve()}|{row[0] if row else ''}"

    def _prepare(self) -> None:
        self.conn.executescript(_DDL)
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        identity = self._identity()
        if meta and (meta.get("version") != INDEX_VERSION or meta.get("identity") != identity):
            # Another store (or an older index layout): start over rather than mix two stores' runs.
            self.conn.executescript("BEGIN; DELETE FROM runs; DELETE FROM llm; DELETE FROM meta; "
                                    "INSERT INTO runs_fts(runs_fts) VALUES('delete-all'); COMMIT;")
        self.conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                              [("version", INDEX_VERSION), ("identity", identity), ("last_rowid", 0)])

    def live_writers(self) -> set[int]:
        """Writers whose running spans may still end (as ``TraceStore`` decides "unfinished")."""
        host = socket.gethostname()
        return {wid for wid, pid, whost, closed in self.store.execute("SELECT id, pid, host, closed FROM writers")
                if closed is None and (whost != host or pid_alive(pid))}

    def pending(self) -> int:
        """Roots in the store the index has not seen yet (what a build will work through)."""
        last = self.conn.execute("SELECT value FROM meta WHERE key='last_rowid'").fetchone()[0]
        return int(self.store.execute("SELECT count(*) FROM spans WHERE parent_id IS NULL AND rowid > ?",
                                      (last,)).fetchone()[0])

    def refresh(self, progress: Progress | None = None, *, force: bool = False) -> int:
        """Index what is new in the store; returns how many runs were (re)indexed."""
        with self.lock:
            now = time.monotonic()
            if not force and now - self._checked < _REFRESH_EVERY_S:
                return 0
            self._checked = now
            try:
                version = self.store.execute("PRAGMA data_version").fetchone()[0]
                if not force and version == self._data_version:
                    return 0
                done = self._refresh(progress)
                self._data_version = version
                if done:
                    self.generation += 1
                return done
            except sqlite3.Error as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise TraceStoreError(f"indexing trace store {self.store_path} failed ({e}); check the file "
                                      f"is a complete store, or delete {self.path} to rebuild.") from None

    def _refresh(self, progress: Progress | None) -> int:
        last = int(self.conn.execute("SELECT value FROM meta WHERE key='last_rowid'").fetchone()[0])
        live = self.live_writers()
        waiting = [r[0] for r in self.conn.execute("SELECT id FROM runs WHERE final = 0")]
        roots: list[tuple[Any, ...]] = []
        for i in range(0, len(waiting), _CHUNK):
            ids = waiting[i:i + _CHUNK]
            roots += self.store.execute(f"SELECT {_ROOT_COLS} FROM spans WHERE id IN "
                                        f"({','.join('?' * len(ids))})", ids).fetchall()
        roots += self.store.execute(f"SELECT {_ROOT_COLS} FROM spans WHERE parent_id IS NULL AND rowid > ? "
                                    "ORDER BY rowid", (last,)).fetchall()
        for i in range(0, len(roots), _CHUNK):
            chunk = roots[i:i + _CHUNK]
            self._index_chunk(chunk, live, max([last, *(r[0] for r in chunk)]))
            last = max([last, *(r[0] for r in chunk)])
            if progress is not None:
                progress(min(i + _CHUNK, len(roots)), len(roots))
        return len(roots)

    def _index_chunk(self, roots: list[tuple[Any, ...]], live: set[int], last: int) -> None:
        traces = [r[2] for r in roots]
        marks = ",".join("?" * len(traces))
        agg: dict[str, list[Any]] = {t: [0, 0, 0, [], [], []] for t in traces}
        for trace, kind, node, name, start, end, prompt, completion, model, error in self.store.execute(
                "SELECT trace_id, kind, node, name, start, end, prompt_tokens, completion_tokens, model, error "
                f"FROM spans WHERE trace_id IN ({marks})", traces):
            a = agg[trace]
            a[0] += 1
            tokens = (prompt or 0) + (completion or 0)
            a[1] += tokens
            if kind == "llm":
                a[2] += 1
                a[3].append(model)
                a[5].append((node or name, start, None if end is None else end - start, tokens))
            a[4].append(error)
        final_ids = [r[1] for r in roots if r[5] != "running" or r[6] not in live]
        payloads = {sid: (_decoded(i), _decoded(o)) for sid, i, o in self.store.execute(
            f"SELECT id, inputs, outputs FROM spans WHERE id IN ({','.join('?' * len(final_ids))})", final_ids)}
        rows, fts, llm = [], [], []
        for rowid, sid, trace, name, task, status, writer, start, end, verdict, error in roots:
            n, tokens, calls, models, errors, llm_rows = agg[trace]
            final = sid in payloads
            inputs, outputs = payloads.get(sid, (None, None))
            facts = run_facts(verdict, inputs, outputs, models, [error, *errors])
            rows.append((rowid, sid, trace, name, task, status, writer, start, end,
                         None if end is None else end - start, verdict, facts.reason, facts.reason_kind,
                         facts.model, tokens, calls, n, facts.attempts, facts.plans, int(facts.passed),
                         error or (facts.errors[0] if facts.errors else None), int(final)))
            if final:
                fts.append((rowid, facts.text))
                llm += [(rowid, agent, s, d, t) for agent, s, d, t in llm_rows]
        c = self.conn
        c.execute("BEGIN")
        c.executemany(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * 22)})", rows)
        c.executemany("INSERT INTO runs_fts(rowid, body) VALUES (?, ?)", fts)
        c.executemany("INSERT INTO llm VALUES (?, ?, ?, ?, ?)", llm)
        c.execute("UPDATE meta SET value=? WHERE key='last_rowid'", (last,))
        c.execute("COMMIT")
