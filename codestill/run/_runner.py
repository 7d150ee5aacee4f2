"""A batch run's directory and one process's share of the work.

    runs/NAME/config.json        what is needed to reproduce the run (never a secret)
    runs/NAME/ledger.sqlite      which inputs are done (codestill.run._ledger): the resume point
    runs/NAME/trajectories.jsonl every trajectory, accepted or not
    runs/NAME/traces.sqlite      every graph run's spans (codestill traces / codestill ui)
    runs/NAME/stats.json         yield per stage, rejection reasons, tokens and time (codestill.run._tally)

A directory that already holds a run is resumed, as long as it is the same pipeline over the same
inputs; a second process on the same directory is refused (``.lock``), since two writers of one
ledger would each think the other's inputs undone.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from codestill.errors import RunDirError
from codestill.records import write_json
from codestill.run._rundir import RunDir

SAME_RUN = ("pipeline", "seeds_sha256", "shard")  # --limit may grow: "the first 10, then the rest"



def code_version() -> dict[str, str]:
    """codestill's version and, from a git checkout, the commit (with "-dirty" for local changes)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        out = {"codestill": version("codestill")}
    except PackageNotFoundError:
        out = {"codestill": "unknown"}
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
        if sha.returncode == 0 and sha.stdout.strip():
            out["git"] = sha.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    f: IO[bytes] = (run_dir / ".lock").open("wb")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"another codestill process is working on {run_dir}; wait for it to end, or "
                              "give another --out") from None
        yield
    finally:
        f.close()


def prepare(run_dir: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """Write ``config.json`` for a new run, or check it for a resumed one; returns the earlier record."""
    path = RunDir(run_dir).config_path
    if not path.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, {**record, "sessions": [record["started"]]})
        return None
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path} is unreadable ({e}); give another --out, or remove the directory") from None
    for key in SAME_RUN:
        if earlier.get(key) != record.get(key):
            raise RunDirError(f"{run_dir} holds a run with another {key} ({earlier.get(key)!r}, now "
                              f"{record.get(key)!r}); resume it with the same inputs and options, or give "
                              "another --out")
    write_json(path, {**earlier, "sessions": [*earlier.get("sessions", []), record["started"]],
                      "latest": {k: record[k] for k in ("models", "settings", "code", "concurrency", "argv")}})
    return dict(earlier)


def redacted_argv(argv: list[str]) -> list[str]:
    """The command line as typed, with the value of any key-like option blanked out."""
    out, hide = [], False
    for a in argv:
        if hide:
            out.append("***")
            hide = False
            continue
        low = a.lower()
        if any(w in low for w in ("key", "token", "secret", "password")):
            if "=" in a:
                out.append(a.split("=", 1)[0] + "=***")
                continue
            hide = a.startswith("-")
        out.append(a)
    return out


def install_stop(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, main: asyncio.Task[Any],
                 on_first: Callable[[], None]) -> Callable[[], None]:
    """Ctrl-C (or SIGTERM) once: stop taking inputs, finish those in flight. Twice: cancel them now."""
    def handler() -> None:
        if not stop.is_set():
            stop.set()
            on_first()
        else:
            main.cancel()

    sigs = [signal.SIGINT, signal.SIGTERM]
    for s in sigs:
        loop.add_signal_handler(s, handler)

    def remove() -> None:
        for s in sigs:
            loop.remove_signal_handler(s)
    return remove


def started() -> dict[str, Any]:
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": sys.version.split()[0]}
