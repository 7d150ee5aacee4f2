"""Reaching a Docker engine, and (for `codestill sandbox setup`) making one run on this machine.

Setup is idempotent: on a machine where an engine already answers it changes nothing. Otherwise,
as root on Debian/Ubuntu, it installs ``docker.io`` and ``debootstrap`` and starts ``dockerd``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from codestill.config import SandboxConfig
from codestill.errors import EngineUnavailable, SetupError

Say = Callable[[str], None]
DOCKERD_LOG = Path("/var/log/codestill-dockerd.log")
_APT_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}


def _where(config: SandboxConfig) -> str:
    return config.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(config: SandboxConfig) -> docker.DockerClient:
    """A client for a running engine, or EngineUnavailable with the fix."""
    try:
        if config.docker_host:
            client = docker.DockerClient(base_url=config.docker_host, timeout=int(config.api_timeout_s))
        else:
            client = docker.from_env(timeout=int(config.api_timeout_s))
        client.ping()
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        raise EngineUnavailable(
            f"No Docker engine answers at {_where(config)} ({type(e).__name__}). "
            "Start one with `codestill sandbox setup` (installs and starts dockerd as root), "
            "or point DOCKER_HOST / sandbox.docker_host at a running engine."
        ) from None


def ensure_engine(config: SandboxConfig, say: Say) -> docker.DockerClient:
    """Return a client, installing and starting an engine first when none answers."""
    try:
        return connect(config)
    except EngineUnavailable:
        if config.docker_host or os.environ.get("DOCKER_HOST"):
            raise  # a remote engine is the user's to start
    install_packages(say)
    start_dockerd(say)
    return _wait_for_engine(config, timeout_s=60)


def install_packages(say: Say, needed: tuple[str, ...] = ("dockerd", "debootstrap")) -> None:
    missing = [_APT_PACKAGES[b] for b in needed if shutil.which(b) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SetupError(
            f"{', '.join(missing)} missing and this is not a root Debian/Ubuntu shell. Install Docker "
            "(https://docs.docker.com/engine/install/) and debootstrap, then run `codestill sandbox setup`."
        )
    say(f"apt-get install {' '.join(missing)} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise SetupError(f"`{' '.join(cmd)}` failed: {tail}")


def start_dockerd(say: Say) -> None:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise SetupError("dockerd is not installed: run `apt-get install docker.io` as root.")
    if os.geteuid() != 0:
        raise SetupError("Starting dockerd needs root: run `sudo codestill sandbox setup`.")
    say(f"starting dockerd (log: {DOCKERD_LOG}) ...")
    with open(DOCKERD_LOG, "ab") as log:
        # A session of its own: the engine outlives this command, as a service would.
        subprocess.Popen([dockerd], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_for_engine(config: SandboxConfig, timeout_s: float) -> docker.DockerClient:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return connect(config)
        except EngineUnavailable:
            if time.monotonic() > deadline:
                raise EngineUnavailable(
                    f"dockerd was started but did not answer within {timeout_s:.0f} s; see {DOCKERD_LOG}."
                ) from None
            time.sleep(0.5)
