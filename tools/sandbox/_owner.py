"""Which process owns a sandbox container, and removing the containers of owners that died.

Every container carries the label ``codestill.owner = HOST/BOOT_ID/PID/START``: the machine, its
boot, the client's pid and that process's start time (so a reused pid is not taken for the owner).
A container whose owner ran on this machine and is gone (other boot, no such pid, other start
time) is an orphan: a SIGKILLed client could not remove it. Containers of other machines (a
shared engine) and of live processes are never touched.
"""

from __future__ import annotations

import contextlib
import os
import socket

import docker
import docker.errors

SANDBOX_LABEL = "codestill.sandbox"
OWNER_LABEL = "codestill.owner"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def owner_label(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{_boot_id()}/{pid}/{_start_time(pid) or ''}"


def owner_is_gone(label: str) -> bool:
    """Whether ``label`` names a process of this machine that no longer runs. Unknown: False."""
    try:
        host, boot, pid, start = label.split("/")
    except ValueError:
        return False
    mine = _boot_id()
    if host != socket.gethostname() or not boot or not mine:
        return False  # another machine's, or no way to tell here
    if boot != mine:
        return True  # the machine rebooted since: that process is gone
    return _start_time(int(pid)) != start if pid.isdigit() else False


def reap_orphans(client: docker.DockerClient, *, everything: bool = False) -> int:
    """Remove the sandbox containers whose owner is gone (``everything``: all of them, live
    owners' and other machines' too); return how many."""
    gone = 0
    for c in client.containers.list(all=True, filters={"label": SANDBOX_LABEL}):
        if everything or owner_is_gone(c.labels.get(OWNER_LABEL, "")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                c.remove(force=True)
                gone += 1
    return gone
