"""The execution sandbox: ``await sandbox.run(program, tests, limits) -> ExecResult``.

What it isolates and what it does not is written down in ``tools/sandbox/README.md``; each
guarantee there has an adversarial test in ``tests/tools/sandbox``.
"""

from __future__ import annotations

from codestill.ports import Sandbox
from tools.sandbox._engine import connect, ensure_engine, install_packages
from tools.sandbox._image import build_image, image_present, require_image
from tools.sandbox._owner import reap_orphans
from tools.sandbox._pool import ColdSandbox, DockerSandbox

__all__ = [
    "ColdSandbox",
    "DockerSandbox",
    "Sandbox",
    "build_image",
    "connect",
    "ensure_engine",
    "image_present",
    "install_packages",
    "reap_orphans",
    "require_image",
]
