"""Reading a batch run directory for the SFT export: its id, its trajectories, and the lines passed over.

A run's ``trajectories.jsonl`` is written by a ``JsonlAppender``: an interrupted run can leave its last line
cut off, and a resumed run closes that line and goes on after it, so a cut-off line may sit anywhere in
the file. Such lines are passed over (their item was done again) and counted. Anything else that does
not read as a ``Trajectory`` (a whole JSON line of another kind, another ``schema_version``, text that is
not JSON) is an error naming the line: exporting a run with silently missing records would be worse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from codestill.errors import ExportError, RecordError
from codestill.records import load_record
from codestill.schemas import Trajectory

TRAJECTORIES_FILE = "trajectories.jsonl"
CONFIG_FILE = "config.json"
_LITERALS = ("true", "false", "null")


@dataclass(frozen=True)
class RunInput:
    """What the export reads from a run: its id, its trajectories in file order, the cut-off lines skipped."""

    run_id: str
    trajectories: list[Trajectory]
    cut_off_lines: list[int]


def is_cut_off(line: str) -> bool:
    """Whether ``line`` is a JSON object cut short (a write interrupted mid-line), rather than malformed.

    A prefix of a JSON object fails to parse only at its very end: inside a string that never closes,
    at the end of the text, or in a literal or number that the cut left unfinished (``tr``, ``12.``).
    """
    text = line.strip()
    if not text.startswith("{"):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg.startswith("Unterminated string"):
            return True
        rest = text[e.pos:].strip()
        return rest == "" or any(word.startswith(rest) for word in _LITERALS) or \
            all(c in "0123456789+-.eE" for c in rest)
    return False


def _run_id(run_dir: Path) -> str:
    """The run's id: ``config.json``'s ``run_id`` (or ``id``) when it has one, else the folder's name."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return run_dir.resolve().name
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: not readable JSON ({e}); restore the run's config.json or remove it") from None
    if isinstance(config, dict):
        for key in ("run_id", "id"):
            if isinstance(config.get(key), str) and config[key]:
                return str(config[key])
    return run_dir.resolve().name


def _trajectory(line: str, where: str) -> Trajectory:
    try:
        data = json.loads(line)
    except ValueError:
        data = None  # load_record says what is wrong with it
    if isinstance(data, dict) and "schema_version" not in data:
        # load_record would call it another schema version; a record without one is not a codestill record.
        raise RecordError(f"{where}: not a Trajectory record (no schema_version); give the trajectories.jsonl "
                          "a codestill batch run wrote")
    return load_record(Trajectory, line, where=where)


def read_run(run_dir: Path) -> RunInput:
    """The run's trajectories; one ``CodestillError`` for a missing run, a missing file or a malformed line."""
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir}: no such run directory; give the folder a batch run wrote "
                          "(it holds trajectories.jsonl)")
    path = run_dir / TRAJECTORIES_FILE
    if not path.is_file():
        raise ExportError(f"{run_dir}: no {TRAJECTORIES_FILE} in it; give the folder of a batch run "
                          "(codestill generate writes one), or wait until the run has written trajectories")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExportError(f"{path}: cannot read it ({e.strerror}); check its permissions") from None
    trajectories: list[Trajectory] = []
    cut_off: list[int] = []
    for n, data in enumerate(raw.splitlines(), 1):
        if not data.strip():
            continue
        try:
            line = data.decode()
        except UnicodeDecodeError:
            raise RecordError(f"{path} line {n}: not UTF-8 text; the file is damaged or not a trajectories "
                              "file") from None
        if is_cut_off(line):
            cut_off.append(n)
            continue
        trajectories.append(_trajectory(line, f"{path} line {n}"))
    return RunInput(run_id=_run_id(run_dir), trajectories=trajectories, cut_off_lines=cut_off)
