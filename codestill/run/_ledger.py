"""A batch run's resume point: ``ledger.sqlite`` beside ``trajectories.jsonl``, kept exactly-once.

The trajectories file is append-only; the ledger holds one row per finished input with the byte range
of its lines in that file. Finishing an input is one step, always in this order:

    1. append its lines to trajectories.jsonl and flush them to the OS;
    2. insert its ledger row (with the range) in one SQLite transaction.

The transaction is the commit point. Whatever the file holds past the last committed range was written
by a process that died before step 2: ``Ledger.open`` cuts it off (torn line or whole lines), and the
input is done again. A file shorter than the ledger says (its tail lost with the machine, not the
process) drops the rows it no longer holds, so those inputs are done again too. Either way every input
ends with its lines exactly once, and nothing torn is ever left in the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codestill.errors import LedgerError
from codestill.records import dump_record

LEDGER = "ledger.sqlite"
TRAJECTORIES = "trajectories.jsonl"

_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    last REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    input_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    records INTEGER NOT NULL,
    detail TEXT NOT NULL,
    finished REAL NOT NULL
);
"""



@dataclass(frozen=True)
class Entry:
    """One finished input: its outcome, where its lines are, and what its stages did (``detail``)."""

    input_id: str
    outcome: str
    start: int
    end: int
    records: int
    detail: dict[str, Any]
    finished: float


@dataclass(frozen=True)
class Repair:
    """What ``Ledger.open`` had to undo: bytes cut from the file's tail, rows whose lines were lost."""

    cut_bytes: int = 0
    dropped_rows: int = 0


class Ledger:
    """The ledger of one run directory (or one shard's). Used from one thread: the runner's event loop."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.path = run_dir / LEDGER
        self.trajectories = run_dir / TRAJECTORIES
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process dying; only a power cut may lose the last
            # ones, and then the file check below sends those inputs round again.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(f"BEGIN;\n{_DDL}\nCOMMIT;")  # all tables at once, for readers polling
        except (OSError, sqlite3.Error) as e:
            raise LedgerError(f"cannot open the run's ledger {self.path} ({e}); check that the run directory "
                              "is writable and was written by codestill") from None
        self.repair = self._reconcile()
        self._file = self.trajectories.open("ab")
        now = time.time()
        # Each process working on the run is a session; its wall time ends at its last commit, so the
        # run's wall time survives a crash (``wall_s``).
        self._session = self._db.execute("INSERT INTO sessions (started, last) VALUES (?, ?)", (now, now)).lastrowid

    def _reconcile(self) -> Repair:
        size = self.trajectories.stat().st_size if self.trajectories.exists() else 0
        dropped = 0
        end = self._end()
        if size < end:
            dropped = self._db.execute("DELETE FROM items WHERE end > ?", (size,)).rowcount
            end = self._end()
        if size > end:
            with self.trajectories.open("r+b") as f:
                f.truncate(end)
        return Repair(cut_bytes=max(0, size - end), dropped_rows=dropped)

    def _end(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(end), 0) FROM items").fetchone()[0])

    def done(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT input_id FROM items")}

    def commit(self, input_id: str, outcome: str, records: Sequence[BaseModel], detail: dict[str, Any]) -> Entry:
        """Append ``records`` and record the input as finished; see the module docstring for why it is
        exactly-once. An input already in the ledger is refused (it would be a duplicate)."""
        data = b"".join(dump_record(r).encode() + b"\n" for r in records)
        start = self._file.tell()
        self._file.write(data)
        self._file.flush()
        entry = Entry(input_id, outcome, start, start + len(data), len(records), detail, time.time())
        try:
            with self._db:  # one transaction: the row and the session's clock
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (input_id, outcome, entry.start, entry.end, entry.records,
                                  json.dumps(detail, sort_keys=True), entry.finished))
                self._db.execute("UPDATE sessions SET last = ? WHERE id = ?", (entry.finished, self._session))
        except sqlite3.Error as e:
            # Undo the append so the file and the ledger agree while this process goes on.
            self._file.truncate(start)
            self._file.seek(start)
            if isinstance(e, sqlite3.IntegrityError):
                raise LedgerError(f"input {input_id!r} is already in the ledger {self.path}; ids must be unique"
                                  ) from None
            raise LedgerError(f"cannot write the ledger {self.path} ({e}); the input will be done again on "
                              "resume") from None
        return entry

    def _commit_bytes(self, entry: Entry, data: bytes) -> None:
        """Copy a committed entry from another ledger (``merge``), with its lines."""
        start = self._file.tell()
        self._file.write(data)
        self._file.flush()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (entry.input_id, entry.outcome, start, start + len(data), entry.records,
                              json.dumps(entry.detail, sort_keys=True), entry.finished))

    def entries(self) -> Iterator[Entry]:
        for row in self._db.execute("SELECT input_id, outcome, start, end, records, detail, finished FROM items "
                                    "ORDER BY start"):
            yield Entry(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])

    def wall_s(self) -> float:
        """Wall time of every session so far, each counted to its last commit."""
        return float(self._db.execute("SELECT coalesce(sum(last - started), 0) FROM sessions").fetchone()[0])

    def close(self) -> None:
        self._file.close()
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_entries(run_dir: Path, since: int = 0) -> list[Entry]:
    """The committed entries of a ledger, read-only (a running batch may be writing it); ``since``: only
    those whose lines start at or after that byte of the trajectories file (the ones a poller has not seen)."""
    path = run_dir / LEDGER
    if not path.is_file():
        return []
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            # A file without any table yet is a ledger its batch is creating this instant: nothing done.
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                return []
            rows = db.execute("SELECT input_id, outcome, start, end, records, detail, finished FROM items "
                              "WHERE start >= ? ORDER BY start", (since,)).fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise LedgerError(f"cannot read the ledger {path} ({e}); is it a codestill run directory?") from None
    return [Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]


def read_wall(run_dir: Path) -> float:
    """``Ledger.wall_s`` without opening the ledger for writing (which would start a session)."""
    path = run_dir / LEDGER
    if not path.is_file():
        return 0.0
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        return float(db.execute("SELECT coalesce(sum(last - started), 0) FROM sessions").fetchone()[0])
    except sqlite3.Error as e:
        raise LedgerError(f"cannot read the ledger {path} ({e}); is it a codestill run directory?") from None
    finally:
        db.close()


def committed(run_dir: Path, since: int = 0) -> Iterator[tuple[Entry, list[bytes]]]:
    """Each committed entry with its lines of trajectories.jsonl (never an uncommitted tail); ``since`` as
    for ``read_entries``."""
    entries = read_entries(run_dir, since)
    path = run_dir / TRAJECTORIES
    if not entries or not path.is_file():
        return
    with path.open("rb") as f:
        for e in entries:
            f.seek(e.start)
            yield e, [line for line in f.read(e.end - e.start).splitlines() if line.strip()]


def merge(run_dir: Path, shard_dirs: list[Path]) -> int:
    """Rebuild the run's ledger and trajectories from its shards' (Ray runs: the shards are the truth, so
    this can be redone at any time). Built beside, then moved into place; returns the inputs merged."""
    tmp = run_dir / ".merge"
    for name in (LEDGER, TRAJECTORIES, LEDGER + "-wal", LEDGER + "-shm"):
        (tmp / name).unlink(missing_ok=True)
    n = 0
    walls = [0.0]
    with Ledger(tmp) as out:
        for d in shard_dirs:
            for entry, lines in committed(d):
                out._commit_bytes(entry, b"".join(line + b"\n" for line in lines))
                n += 1
            if (d / LEDGER).is_file():
                with Ledger(d) as shard:
                    walls.append(shard.wall_s())
        # The shards ran side by side: the run took as long as the slowest.
        out._db.execute("DELETE FROM sessions")
        out._db.execute("INSERT INTO sessions (started, last) VALUES (0, ?)", (max(walls),))
    for name in (TRAJECTORIES, LEDGER):
        os.replace(tmp / name, run_dir / name)
    for name in (LEDGER + "-wal", LEDGER + "-shm"):
        (run_dir / name).unlink(missing_ok=True)
    return n
