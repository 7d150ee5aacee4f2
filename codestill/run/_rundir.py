"""A batch run's directory: the one owner of its file names, and the one way to read what it committed.

    runs/<run-id>/
      config.json         what was run, by whom and with what (``RunDir.config``; ``_runner.prepare`` writes it)
      ledger.sqlite       which inputs are done and where their lines are: the commit point (``_ledger``)
      trajectories.jsonl  every finished input's records, appended; only the ledger's ranges are committed
      traces.sqlite       the run's spans (``codestill traces``, ``codestill ui``)
      memory.log          what the memory's child process printed
      stats.json          the tally, rewritten as the run goes
      export/             ``codestill export``'s output (sft.jsonl and its card)

Readers (the export, the tally, Ray's merge) never parse ``trajectories.jsonl`` on their own: a batch may
be appending to it this instant, and a process that died leaves a torn or uncommitted tail there until
the next ``Ledger`` cuts it off. ``RunDir.trajectories`` returns exactly the committed records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codestill.errors import ExportError, RecordError
from codestill.records import load_record
from codestill.run._ledger import LEDGER, TRAJECTORIES, Entry, committed
from codestill.schemas import Trajectory

__all__ = ["Committed", "RunDir"]


@dataclass(frozen=True)
class Committed:
    """The committed trajectories in commit order, and how many bytes past the last commit were left out
    (a running batch's next input, or the tail of one that died)."""

    run_id: str
    trajectories: list[Trajectory]
    uncommitted_bytes: int


@dataclass(frozen=True)
class RunDir:
    path: Path

    CONFIG = "config.json"
    STATS = "stats.json"
    TRACES = "traces.sqlite"
    MEMORY_LOG = "memory.log"
    LEDGER = LEDGER
    TRAJECTORIES = TRAJECTORIES
    EXPORT = "export"

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def stats_path(self) -> Path:
        return self.path / self.STATS

    @property
    def traces_path(self) -> Path:
        return self.path / self.TRACES

    @property
    def memory_log_path(self) -> Path:
        return self.path / self.MEMORY_LOG

    @property
    def ledger_path(self) -> Path:
        return self.path / self.LEDGER

    @property
    def trajectories_path(self) -> Path:
        return self.path / self.TRAJECTORIES

    @property
    def export_path(self) -> Path:
        return self.path / self.EXPORT

    def config(self) -> dict[str, Any]:
        """``config.json`` as written (an empty dict when there is none yet)."""
        if not self.config_path.is_file():
            return {}
        try:
            data = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as e:
            raise RecordError(f"{self.config_path}: not readable JSON ({e}); restore the run's config.json "
                              "or remove it") from None
        return data if isinstance(data, dict) else {}

    def run_id(self) -> str:
        """``config.json``'s ``run_id`` (or ``id``) when it has one, else the folder's name."""
        config = self.config()
        for key in ("run_id", "id"):
            if isinstance(config.get(key), str) and config[key]:
                return str(config[key])
        return self.path.resolve().name

    def committed(self, since: int = 0) -> Iterator[tuple[Entry, list[bytes]]]:
        """Each committed input's ledger entry with its lines (see ``_ledger.committed``)."""
        return committed(self.path, since)

    def trajectories(self) -> Committed:
        """The committed trajectories, read through the ledger. One ``CodestillError`` naming the cause and
        the fix for a missing run, a folder that is no batch run, or a committed line that is no Trajectory."""
        if not self.path.is_dir():
            raise ExportError(f"{self.path}: no such run directory; give the folder a batch run wrote "
                              f"(it holds {self.LEDGER} and {self.TRAJECTORIES})")
        if not self.ledger_path.is_file():
            raise ExportError(f"{self.path}: no {self.LEDGER} in it, so nothing in it is committed; give the "
                              "folder of a codestill batch run (codestill generate writes one), or wait until "
                              "the run has finished an input")
        out: list[Trajectory] = []
        end = 0
        for entry, lines in self.committed():
            end = max(end, entry.end)
            for n, line in enumerate(lines, 1):
                out.append(_trajectory(line, f"{self.trajectories_path} (input {entry.input_id!r}, record {n})"))
        size = self.trajectories_path.stat().st_size if self.trajectories_path.is_file() else 0
        return Committed(self.run_id(), out, max(0, size - end))


def _trajectory(raw: bytes, where: str) -> Trajectory:
    try:
        line = raw.decode()
    except UnicodeDecodeError:
        raise RecordError(f"{where}: not UTF-8 text; the file is damaged") from None
    try:
        data = json.loads(line)
    except ValueError:
        data = None  # load_record says what is wrong with it
    if isinstance(data, dict) and "schema_version" not in data:
        raise RecordError(f"{where}: not a Trajectory record (no schema_version); the file is damaged")
    return load_record(Trajectory, line, where=where)
