"""A Chroma server for one job: ``chroma run`` (shipped with chromadb) over a folder, on a free loopback
port, stopped when the job ends. Batch runs spread over Ray use it when no ``memory.url`` is set, so
every worker process shares one memory instead of each opening the folder (which corrupts it)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from codestill.errors import MemoryStoreError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def chroma_server(path: Path, startup_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve the Chroma store in ``path`` at http://127.0.0.1:PORT (yielded) until the block ends."""
    from memory._client import _server

    chroma = Path(sys.executable).parent / "chroma"
    port = _free_port()
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port",
                                     str(port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise MemoryStoreError(f"cannot start `chroma run` ({e}); reinstall chromadb, or set memory.url to "
                                   "a running Chroma server") from None
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                try:
                    _server(url)
                    break
                except MemoryStoreError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        tail = log.read()[-500:].decode(errors="replace")
                        raise MemoryStoreError(f"`chroma run --path {path}` did not start ({tail.strip()}); "
                                               "set memory.url to a running Chroma server instead") from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
