"""One warm, locked-down container whose PID 1 is the runner, spoken to over its attach stream.

One ``docker exec`` per run costs 25-50 ms of CPU here; a request over the already-open attach
stream costs well under a millisecond, and the runner forks a fresh child per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import itertools
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import docker.errors
import docker.types

from codestill.config import SandboxConfig
from tools.sandbox._image import IMAGE_ENV, SANDBOX_UID

# Reads the runner's source from stdin and runs it as module `_cs_runner`, which starts main().
_BOOTSTRAP = (
    "import os,types\nb=b''\nwhile not b.endswith(b'\\n'): b+=os.read(0,1)\nn=int(b);s=b''\n"
    "while len(s)<n: s+=os.read(0,n-len(s))\nm=types.ModuleType('_cs_runner')\n"
    "exec(compile(s,'_cs_runner.py','exec'),m.__dict__)\n"
)
_HEADER = struct.Struct(">I")
_ids = itertools.count(1)

Call = Callable[..., Awaitable[Any]]


class InfraFault(Exception):
    """The container or the engine failed us; the run is retried elsewhere."""


def runner_source() -> bytes:
    return importlib.resources.files("tools.sandbox").joinpath("_runner.py").read_bytes()


def container_kwargs(config: SandboxConfig) -> dict[str, Any]:
    """The isolation of every container; see tools/sandbox/README.md for what each line buys."""
    return {
        "image": config.image,
        "command": ["python3", "-I", "-c", _BOOTSTRAP],
        "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
        "environment": dict(IMAGE_ENV),  # explicit: nothing of the host's environment
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={config.tmpfs_mb}m,mode=1777"},
        "shm_size": f"{config.shm_mb}m",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": config.pids_limit,
        "mem_limit": f"{config.memory_mb}m",
        "memswap_limit": f"{config.memory_mb}m",  # equal to mem_limit: no swap
        "nano_cpus": int(config.cpus_per_container * 1e9),
        "ulimits": [docker.types.Ulimit(name="core", soft=0, hard=0),
                    docker.types.Ulimit(name="nofile", soft=1024, hard=1024)],
        "stdin_open": True,
        "tty": False,
        "detach": True,
        "hostname": "sandbox",
        "log_config": docker.types.LogConfig(type="none"),  # the protocol is not a log
        "labels": {"codestill.sandbox": "1"},
    }


class Container:
    """A started container; ``request`` sends one frame and awaits its reply."""

    def __init__(self, cid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 keep: object, ready: dict) -> None:
        self.id, self.runs, self.ready = cid, 0, ready
        self._reader, self._writer, self._keep = reader, writer, keep
        self._stdout = bytearray()
        self.stderr = bytearray()  # the runner's own stderr: only ever a crash report

    @classmethod
    async def start(cls, client: docker.DockerClient, config: SandboxConfig, call: Call,
                    source: bytes) -> Container:
        """Create, attach, start, hand the runner its source and wait for it to say ready."""

        def create_and_attach() -> tuple[str, Any]:
            container = client.containers.create(**container_kwargs(config))
            try:
                sock = client.api.attach_socket(
                    container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
                client.api.start(container.id)
            except BaseException:
                _force_remove(client, container.id)
                raise
            return container.id, sock

        cid, sock = await call(create_and_attach, timeout=config.start_timeout_s)
        try:
            raw = getattr(sock, "_sock", sock)
            reader, writer = await asyncio.open_connection(sock=raw)
            this = cls(cid, reader, writer, keep=sock, ready={})
            writer.write(b"%d\n" % len(source) + source)
            this.ready = await asyncio.wait_for(this._read_frame(), config.start_timeout_s)
            if this.ready.get("op") != "ready":
                raise InfraFault(f"runner said {this.ready!r} instead of ready")
            return this
        except BaseException:
            await call(_force_remove, client, cid, timeout=config.api_timeout_s)
            raise

    async def request(self, payload: dict, timeout: float) -> dict:
        payload = {**payload, "id": next(_ids)}
        data = json.dumps(payload, separators=(",", ":")).encode()
        try:
            self._writer.write(_HEADER.pack(len(data)) + data)
            await self._writer.drain()
            reply = await asyncio.wait_for(self._read_frame(), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            raise InfraFault(f"container {self.id[:12]}: {type(e).__name__} {e}".strip()) from None
        if reply.get("id") != payload["id"]:
            raise InfraFault(f"container {self.id[:12]}: protocol desync")
        return reply

    async def _read_frame(self) -> dict:
        while True:
            if len(self._stdout) >= _HEADER.size:
                (n,) = _HEADER.unpack_from(self._stdout)
                if len(self._stdout) >= _HEADER.size + n:
                    body = bytes(self._stdout[_HEADER.size : _HEADER.size + n])
                    del self._stdout[: _HEADER.size + n]
                    return json.loads(body)
            # Docker's attach stream multiplexes stdout (1) and stderr (2) in 8-byte-headed frames.
            head = await self._reader.readexactly(8)
            payload = await self._reader.readexactly(int.from_bytes(head[4:8], "big"))
            if head[0] == 1:
                self._stdout += payload
            else:
                self.stderr += payload
                del self.stderr[:-4096]

    async def destroy(self, client: docker.DockerClient, call: Call, timeout: float) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await call(_force_remove, client, self.id, timeout=timeout)


def _force_remove(client: docker.DockerClient, cid: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_container(cid, force=True)
