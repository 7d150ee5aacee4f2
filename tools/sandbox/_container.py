"""One warm, locked-down container whose PID 1 is the runner, spoken to over its attach stream.

One ``docker exec`` per run costs 25-50 ms of CPU here; a request over the already-open attach
stream costs well under a millisecond, and the runner forks a fresh child per run.

The stream closes when the client goes (``StdinOnce``), the runner then exits, and the engine
removes the container (``AutoRemove``): a SIGKILLed client leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import docker.errors
import docker.types

from codestill.config import SandboxConfig
from tools.sandbox._channel import InfraFault, ProtocolFault, frame_body, frame_length, request
from tools.sandbox._image import IMAGE_ENV, SANDBOX_UID
from tools.sandbox._owner import OWNER_LABEL, SANDBOX_LABEL, owner_label
from tools.sandbox._runner import HEADER

# Reads the runner's source from stdin and runs it as module `_cs_runner`, which starts main().
# End of input exits: a client killed before it sent the source must not leave PID 1 spinning.
_BOOTSTRAP = (
    "import os,sys,types\ndef r(n):\n c=os.read(0,n)\n if not c: sys.exit(0)\n return c\n"
    "b=b''\nwhile not b.endswith(b'\\n'): b+=r(1)\nn=int(b);s=b''\n"
    "while len(s)<n: s+=r(n-len(s))\nm=types.ModuleType('_cs_runner')\n"
    "exec(compile(s,'_cs_runner.py','exec'),m.__dict__)\n"
)

Call = Callable[..., Awaitable[Any]]


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
        "auto_remove": True,  # the runner exits when its client goes: the engine removes the rest
        "hostname": "sandbox",
        "log_config": docker.types.LogConfig(type="none"),  # the protocol is not a log
        "labels": {SANDBOX_LABEL: "1", OWNER_LABEL: owner_label()},
    }


def _create(client: docker.DockerClient, config: SandboxConfig) -> str:
    """Create a container from ``container_kwargs`` with ``StdinOnce`` set, which the SDK's
    ``containers.create`` never sets for a detached container: the engine then closes the
    runner's stdin when our attach connection goes, even when this process is SIGKILLed."""
    kwargs = container_kwargs(config)
    host = client.api.create_host_config(**{k: kwargs.pop(k) for k in _HOST_KEYS})
    spec = client.api.create_container_config(**kwargs, host_config=host)
    spec["StdinOnce"] = True
    return client.api.create_container_from_config(spec)["Id"]


_HOST_KEYS = ("network_mode", "read_only", "tmpfs", "shm_size", "cap_drop", "security_opt", "pids_limit",
              "mem_limit", "memswap_limit", "nano_cpus", "ulimits", "auto_remove", "log_config")


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

        handoff = _Handoff()

        def create_and_attach() -> tuple[str, Any]:
            cid = _create(client, config)
            try:
                sock = client.api.attach_socket(
                    cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
                client.api.start(cid)
            except BaseException:
                _force_remove(client, cid)
                raise
            return handoff.deliver(client, cid, sock)

        try:
            cid, sock = await call(create_and_attach, timeout=config.start_timeout_s)
        except BaseException:
            handoff.abandon(client)
            raise
        try:
            raw = getattr(sock, "_sock", sock)
            reader, writer = await asyncio.open_connection(sock=raw)
            this = cls(cid, reader, writer, keep=sock, ready={})
            writer.write(b"%d\n" % len(source) + source)
            try:
                this.ready = await asyncio.wait_for(this._read_frame(), config.start_timeout_s)
            except ProtocolFault as e:
                raise InfraFault(f"container {cid[:12]} at start: {e}") from None
            if this.ready.get("op") != "ready":
                raise InfraFault(f"runner said {this.ready!r} instead of ready")
            if this.ready.get("sealed") is not True:  # fail closed: its channel would be reachable
                raise InfraFault("the runner could not make itself non-dumpable (prctl); "
                                 "programs could reach its channel, so the container is not used")
            return this
        except BaseException:
            await call(_force_remove, client, cid, timeout=config.api_timeout_s)
            raise

    async def request(self, payload: dict, timeout: float) -> dict:
        """One request, one reply (``_channel.request``)."""
        return await request(self._writer, self._read_frame, payload, timeout, f"container {self.id[:12]}")

    async def _read_frame(self) -> dict:
        while True:
            if len(self._stdout) >= HEADER.size:
                n = frame_length(self._stdout[: HEADER.size], self._stdout)  # judged on 8 bytes: no waiting
                if len(self._stdout) >= HEADER.size + n:
                    body = bytes(self._stdout[HEADER.size : HEADER.size + n])
                    del self._stdout[: HEADER.size + n]
                    return frame_body(body)
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


class _Handoff:
    """A container made on a worker thread either reaches the coroutine that waits for it or is
    removed: a start that timed out or was cancelled (a pool closing while it replaces a
    container) must not leave one behind, whichever of the two finishes first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[str, Any] | None = None
        self._abandoned = False

    def deliver(self, client: docker.DockerClient, cid: str, sock: Any) -> tuple[str, Any]:
        with self._lock:
            if not self._abandoned:
                self._made = (cid, sock)
                return cid, sock
        _discard(client, cid, sock)
        raise InfraFault(f"container {cid[:12]} was started after its start was given up")

    def abandon(self, client: docker.DockerClient) -> None:
        """Called by the waiting side when it stops waiting: what was delivered is discarded (on a
        thread of its own: this runs on the event loop, maybe while it is being cancelled)."""
        with self._lock:
            self._abandoned = True
            made, self._made = self._made, None
        if made is not None:
            threading.Thread(target=_discard, args=(client, *made), daemon=True).start()


def _discard(client: docker.DockerClient, cid: str, sock: Any) -> None:
    with contextlib.suppress(Exception):
        sock.close()
    with contextlib.suppress(Exception):
        _force_remove(client, cid)


def _force_remove(client: docker.DockerClient, cid: str) -> None:
    try:
        client.api.remove_container(cid, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:  # 409: the engine is already removing it (AutoRemove)
        if e.status_code != 409:
            raise
