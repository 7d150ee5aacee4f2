"""Running the simulator: in this process (``run_server``) or as a child process (``serve_subprocess``).

The server binds its socket itself, so with port 0 it knows the port the kernel picked before
uvicorn starts, and says it in its first stdout line::

    codestill sim: listening on http://127.0.0.1:PORT/v1 (a simulator, not a language model)

The socket is already listening when that line is printed, so a client may connect at once (the
connection waits in the backlog until uvicorn accepts it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from codestill.errors import CodestillError
from codestill.sim._config import SimConfig

ANNOUNCE = "codestill sim: listening on {url} (a simulator, not a language model)"
_ANNOUNCED = re.compile(r"listening on (\S+)")


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise CodestillError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port, "
                             "or --port 0 for any free one.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(config: SimConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted (SIGINT / SIGTERM), announcing the URL on stdout first."""
    import uvicorn  # only where a server runs: clients of codestill.sim (tests, benches) never need it

    from codestill.sim._app import create_app

    app = create_app(config)
    sock = bind(host, port)
    # uvloop and httptools halve the per-request overhead; uvicorn falls back without them.
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    server = uvicorn.Server(uvicorn.Config(
        app, loop=loop, http=http, access_log=False, log_level="warning", lifespan="off", backlog=2048,
        timeout_keep_alive=30, timeout_graceful_shutdown=2,  # a held ("hang") request must not block exit
    ))
    print(ANNOUNCE.format(url=base_url(host, sock.getsockname()[1])), flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _read_first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The child's first stdout line, or "" if it exits or stays silent for ``timeout_s``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf and (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                break
            data = os.read(fd, 4096)
            if not data:
                break
            buf += data
    return buf.split(b"\n", 1)[0].decode(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def serve_subprocess(config: SimConfig | None = None, host: str = "127.0.0.1",
                     startup_timeout_s: float = 60.0) -> Iterator[str]:
    """Start ``python -m codestill.sim`` on a free port; yield its base URL ("http://host:port/v1").

    The child is terminated (then killed, if it lingers) when the block ends, also on an exception.
    """
    config = config or SimConfig()
    cmd = [sys.executable, "-m", "codestill.sim", *config.to_flags(), "--host", host, "--port", "0"]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
        try:
            line = _read_first_line(proc, startup_timeout_s)
            m = _ANNOUNCED.search(line)
            if m is None:
                _stop(proc)
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-2000:]
                raise CodestillError(f"the simulator did not start (exit code {proc.returncode}): {line or tail}")
            yield m.group(1)
        finally:
            _stop(proc)
