"""The store's SQLite layout, and opening it: the writer read-write (WAL), readers read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from codestill.errors import TraceStoreError

# 'cdst': marks the file as ours, so a foreign SQLite file is refused instead of written into.
APPLICATION_ID = 0x63647374
FORMAT_VERSION = 1

_DDL = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS writers (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started REAL NOT NULL,
    closed REAL
);
CREATE TABLE IF NOT EXISTS spans (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    parent_id TEXT,
    writer INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    node TEXT,
    task_id TEXT,
    status TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL,
    model TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    error TEXT,
    verdict TEXT,
    inputs BLOB,
    outputs BLOB,
    extra BLOB
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE INDEX IF NOT EXISTS spans_roots ON spans(start) WHERE parent_id IS NULL;
PRAGMA application_id={APPLICATION_ID};
PRAGMA user_version={FORMAT_VERSION};
COMMIT;
"""

_FIX = "point it at a traces.sqlite that codestill wrote, or at a new path"


def _check(conn: sqlite3.Connection, path: Path, *, writable: bool) -> None:
    """Refuse files that are not ours; an empty database is adopted only by the writer."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.OperationalError as e:  # locked past the busy timeout, or unreadable: not a verdict
        if "locked" in str(e) or "busy" in str(e):
            raise TraceStoreError(f"trace store {path} stayed busy ({e}); try again, or stop the process "
                                  "holding it.") from None
        raise TraceStoreError(f"cannot read trace store {path} ({e}); check the file's permissions."
                              ) from None
    except sqlite3.DatabaseError as e:
        raise TraceStoreError(f"{path} is not a codestill trace store ({e}); {_FIX}.") from None
    if app_id == 0 and tables == 0:
        if writable:
            return
        raise TraceStoreError(f"{path} is an empty file, not a trace store yet; run a traced graph first.")
    if app_id != APPLICATION_ID:
        raise TraceStoreError(f"{path} is an SQLite database but not a codestill trace store; {_FIX}.")
    if version > FORMAT_VERSION:
        raise TraceStoreError(f"{path} has trace format {version}, this codestill reads up to "
                              f"{FORMAT_VERSION}; upgrade codestill.")


def open_writer(path: Path) -> sqlite3.Connection:
    """The one read-write connection; the writer thread uses it, the constructing thread only opens it."""
    if path.is_dir():
        raise TraceStoreError(f"trace store {path} is a directory; give a file path such as "
                              f"{path}/traces.sqlite.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the writer issues BEGIN/COMMIT itself, one transaction per batch.
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    except (OSError, sqlite3.Error) as e:
        raise TraceStoreError(f"cannot open trace store {path} ({e}); choose a writable path.") from None
    try:
        _check(conn, path, writable=True)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses nothing when the process dies, only on power loss, at far fewer fsyncs.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_DDL)
    except sqlite3.Error as e:
        conn.close()
        raise TraceStoreError(f"cannot prepare trace store {path} ({e}); {_FIX}.") from None
    except TraceStoreError:
        conn.close()
        raise
    return conn


def open_reader(path: Path, *, any_thread: bool = False) -> sqlite3.Connection:
    """A read-only connection; WAL lets it read while a writer in another thread or process commits.
    ``any_thread``: the caller serialises use from several threads itself (the viewer's index does)."""
    if path.is_dir():
        raise TraceStoreError(f"trace store {path} is a directory; pass the traces.sqlite file inside it.")
    if not path.is_file():
        raise TraceStoreError(f"no trace store at {path}; run a traced graph first, or pass --store PATH.")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0,
                               check_same_thread=not any_thread)
    except sqlite3.Error as e:
        raise TraceStoreError(f"cannot open trace store {path} ({e}); check the file's permissions."
                              ) from None
    try:
        _check(conn, path, writable=False)
    except TraceStoreError:
        conn.close()
        raise
    return conn
