"""Merging trace stores: the shards of a Ray run each write their own, and the run keeps one."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from codestill.traces._schema import open_reader, open_writer

_COLS = ("id, trace_id, parent_id, writer, kind, name, node, task_id, status, start, end, model, prompt_tokens, "
         "completion_tokens, error, verdict, inputs, outputs, extra")


def merge_stores(dest: Path, sources: list[Path]) -> int:
    """Write a store at ``dest`` holding every span of ``sources`` (built beside, then moved into place);
    each source's writers get new ids, so "unfinished" still reads right. Returns the spans copied."""
    tmp = dest.with_name(f".{dest.name}.merge")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    conn = open_writer(tmp)
    copied = 0
    try:
        for src in sources:
            open_reader(src).close()  # refuses a foreign file with the store's own message
            conn.execute("ATTACH DATABASE ? AS src", (f"{src.resolve().as_uri()}?mode=ro",))
            conn.execute("BEGIN IMMEDIATE")
            for wid, pid, host, started, closed in conn.execute("SELECT * FROM src.writers").fetchall():
                new = conn.execute("INSERT INTO writers (pid, host, started, closed) VALUES (?, ?, ?, ?)",
                                   (pid, host, started, closed)).lastrowid
                cols = _COLS.replace("writer,", f"{new},")
                copied += conn.execute(f"INSERT OR IGNORE INTO spans ({_COLS}) SELECT {cols} FROM src.spans "
                                       "WHERE writer = ?", (wid,)).rowcount
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE src")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error:
        conn.close()
        raise
    conn.close()
    os.replace(tmp, dest)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    return copied
