"""Building the sandbox image without a registry: debootstrap a rootfs, ``docker import`` it.

Where a registry is reachable, ``SandboxConfig.base_image`` builds from a registry image
instead (a two-line Dockerfile that adds the unprivileged user).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from codestill.config import SandboxConfig
from codestill.errors import ImageBuildError, ImageMissing

SANDBOX_UID = 10001
# Imported images start with an empty environment: this is all a program will ever see.
IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp/work",
             "PYTHONDONTWRITEBYTECODE": "1"}
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt",
         "var/lib/apt/lists", "var/log")

Say = Callable[[str], None]


def image_present(client: docker.DockerClient, config: SandboxConfig) -> bool:
    try:
        client.images.get(config.image)
        return True
    except docker.errors.ImageNotFound:
        return False


def require_image(client: docker.DockerClient, config: SandboxConfig) -> None:
    if not image_present(client, config):
        raise ImageMissing(
            f"The sandbox image {config.image} is not built. Build it with `codestill sandbox build` "
            "(or `make setup`)."
        )


def build_image(client: docker.DockerClient, config: SandboxConfig, say: Say = lambda _: None) -> str:
    """Build the image named by ``config.image``; return its id."""
    if config.base_image:
        return _build_from_registry(client, config, say)
    return _build_from_debootstrap(client, config, say)


def _build_from_debootstrap(client: docker.DockerClient, config: SandboxConfig, say: Say) -> str:
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is not installed. Run `codestill sandbox setup` (it installs it as root), "
            "or `apt-get install debootstrap`, or set sandbox.base_image to a registry image."
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "debootstrap needs root. Run `sudo codestill sandbox build`, "
            "or set sandbox.base_image to a registry image such as python:3.11-slim."
        )
    with tempfile.TemporaryDirectory(prefix="codestill-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {config.debian_suite} (minbase + python3) from {config.debian_mirror} ...")
        cmd = ["debootstrap", "--variant=minbase", "--include=python3", config.debian_suite,
               str(rootfs), config.debian_mirror]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ImageBuildError(
                f"debootstrap failed ({' | '.join(tail)}). Check that {config.debian_mirror} is "
                "reachable, or set sandbox.debian_mirror / sandbox.base_image."
            )
        _add_user(rootfs)
        for rel in _TRIM:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        tarball = Path(tmp) / "rootfs.tar"
        say("packing the rootfs ...")
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        say(f"docker import -> {config.image} ...")
        repo, _, tag = config.image.rpartition(":")
        changes = [f"ENV {k}={v}" for k, v in IMAGE_ENV.items()]
        changes += [f"USER {SANDBOX_UID}:{SANDBOX_UID}", "WORKDIR /tmp"]
        try:
            client.api.import_image_from_file(str(tarball), repository=repo, tag=tag, changes=changes)
        except docker.errors.APIError as e:
            raise ImageBuildError(f"docker import failed: {e.explanation or e}") from None
    return _image_id(client.images.get(config.image).id, config)


def _image_id(found: str | None, config: SandboxConfig) -> str:
    if not found:
        raise ImageBuildError(f"docker built {config.image} but reports no id for it; build it again")
    return found


def _add_user(rootfs: Path) -> None:
    with open(rootfs / "etc/passwd", "a") as f:
        f.write(f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:codestill sandbox:/tmp/work:/usr/sbin/nologin\n")
    with open(rootfs / "etc/group", "a") as f:
        f.write(f"sandbox:x:{SANDBOX_UID}:\n")


def _build_from_registry(client: docker.DockerClient, config: SandboxConfig, say: Say) -> str:
    env = " ".join(f"{k}={v}" for k, v in IMAGE_ENV.items())
    dockerfile = (
        f"FROM {config.base_image}\n"
        f"RUN (groupadd -g {SANDBOX_UID} sandbox && useradd -u {SANDBOX_UID} -g {SANDBOX_UID} "
        f"-d /tmp/work -s /usr/sbin/nologin sandbox) || adduser -D -u {SANDBOX_UID} sandbox\n"
        f"ENV {env}\nUSER {SANDBOX_UID}:{SANDBOX_UID}\nWORKDIR /tmp\n"
    )
    say(f"building {config.image} from {config.base_image} ...")
    try:
        image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=config.image, rm=True)
    except (docker.errors.BuildError, docker.errors.APIError) as e:
        raise ImageBuildError(f"building from {config.base_image} failed: {e}") from None
    return _image_id(image.id, config)
