"""Typed settings. The spine issue layers these into one settings object (file, env, flags)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from codestill.schemas import Limits

# Bump when the image recipe changes: the tag changes and `sandbox setup` builds anew.
IMAGE_RECIPE = "bookworm-py3-1"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class SandboxConfig(BaseModel):
    """How the Docker sandbox runs programs. Recorded in every run's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    docker_host: str | None = Field(None, description="Engine address; default: DOCKER_HOST or the local socket.")
    image: str = Field(f"codestill-sandbox:{IMAGE_RECIPE}", description="The sandbox image's tag.")
    base_image: str | None = Field(
        None, description="Build from this registry image (e.g. python:3.11-slim) instead of debootstrap."
    )
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_suite: str = "bookworm"
    pool_size: int = Field(default_factory=_cores, ge=1, description="Warm containers = CPU-bound runs at once.")
    cpus_per_container: float = Field(1.0, gt=0)
    memory_mb: int = Field(512, ge=64, description="Memory cgroup limit, swap included (no swap).")
    pids_limit: int = Field(128, ge=16, description="Processes and threads per container.")
    tmpfs_mb: int = Field(64, ge=16, description="Size of the writable /tmp.")
    shm_mb: int = Field(16, ge=1, description="Size of /dev/shm.")
    recycle_after: int = Field(1000, ge=1, description="Replace a container after this many runs.")
    infra_retries: int = Field(2, ge=0, description="Retries of a run hit by an infrastructure fault.")
    start_timeout_s: float = Field(60.0, gt=0, description="Deadline for starting one container.")
    api_timeout_s: float = Field(30.0, gt=0, description="Deadline for any other Docker API call.")
    limits: Limits = Limits()
