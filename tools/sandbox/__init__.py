"""The execution sandbox: ``await sandbox.run(program, tests, limits) -> ExecResult``.

What it isolates and what it does not is written down in ``tools/sandbox/README.md``; each
guarantee there has an adversarial test in ``tests/tools/sandbox``.

``DockerSandbox`` (a warm pool of containers) and ``ColdSandbox`` (one per run) are the sandbox;
``LocalSandbox`` runs the same harness in a local process, for tests only: it isolates nothing. The
names load on first use, so importing ``tools.sandbox._local`` (or ``LocalSandbox``) loads no Docker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codestill.ports import Sandbox

if TYPE_CHECKING:
    from tools.sandbox._engine import connect, ensure_engine, install_packages
    from tools.sandbox._image import build_image, image_present, require_image
    from tools.sandbox._local import LocalSandbox
    from tools.sandbox._owner import reap_orphans
    from tools.sandbox._pool import ColdSandbox, DockerSandbox

_WHERE = {
    "ColdSandbox": "_pool", "DockerSandbox": "_pool", "LocalSandbox": "_local",
    "build_image": "_image", "image_present": "_image", "require_image": "_image",
    "connect": "_engine", "ensure_engine": "_engine", "install_packages": "_engine",
    "reap_orphans": "_owner",
}

__all__ = [
    "ColdSandbox",
    "DockerSandbox",
    "LocalSandbox",
    "Sandbox",
    "build_image",
    "connect",
    "ensure_engine",
    "image_present",
    "install_packages",
    "reap_orphans",
    "require_image",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
