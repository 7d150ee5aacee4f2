"""`codestill ui` as a user runs it: a real process serving real HTTP, and its one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.codestill.traces.conftest import run_graphs

ROOT = Path(__file__).resolve().parents[4]


def _ui(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from codestill.cli import main; main()", "ui", "--no-open", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1",
                                 "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_the_store_on_loopback(tmp_path: Path) -> None:
    store = tmp_path / "traces.sqlite"
    run_graphs(store, ["mbpp/11", "mbpp/12"])
    port = _free_port()
    proc = _ui("--traces", str(store), "--port", str(port))
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None, proc.stderr.read() if proc.stderr and proc.poll() is not None else "no answer"
        assert page.status_code == 200 and "mbpp/11" in page.text and "mbpp/12" in page.text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "warning" not in err
    assert (tmp_path / "traces.viewer.sqlite").is_file()


def test_errors_are_one_line() -> None:
    proc = _ui("--traces", "/nonexistent/traces.sqlite")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith("error: no trace store at") and "Traceback" not in err


def test_other_hosts_get_a_warning_and_a_taken_port_an_error(tmp_path: Path) -> None:
    store = tmp_path / "traces.sqlite"
    run_graphs(store, ["mbpp/11"])
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        proc = _ui("--traces", str(store), "--host", "0.0.0.0", "--port", str(taken.getsockname()[1]))
        _, err = proc.communicate(timeout=60)
    flat = " ".join(err.split())
    assert "warning: serving on 0.0.0.0" in flat and "prompt and every piece of code" in flat
    assert proc.returncode == 2 and "cannot serve on 0.0.0.0" in flat and "Traceback" not in err
