"""Artefacts in a SQLite file beside a session's checkpoints, so a resumed thread finds them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from codestill.ports import artefact_key

__all__ = ["SqliteArtefacts"]


class SqliteArtefacts:
    """Artefacts in a SQLite file beside a session's checkpoints, so a resumed thread finds them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # nodes run in threads and on the loop; one connection, serialised
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS artefacts (key TEXT PRIMARY KEY, text TEXT NOT NULL)")

    def put(self, text: str) -> str:
        key = artefact_key(text)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO artefacts VALUES (?, ?)", (key, text))
        return key

    def get(self, key: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT text FROM artefacts WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
