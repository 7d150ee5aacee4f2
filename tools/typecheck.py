"""Type-checking code snippets with Pyright, as SelfCodeAlign does for its seeds.

Pyright is a Node program. The project's dev extra installs basedpyright (a Pyright fork, whose wheel
ships its own Node and whose ``--outputjson`` report is Pyright's) beside the interpreter;
``Pyright.find()`` looks there first, then for ``pyright`` / ``basedpyright`` on PATH (``npm install -g
pyright``, or the ``pyright`` PyPI wrapper), and returns None where there is none: callers skip the
check and say so. Snippets are checked many at a time, each as its own file in a
temporary project, because starting Pyright costs far more than checking one more file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from codestill.errors import TypecheckError

__all__ = ["Pyright", "TypecheckError"]




@dataclass(frozen=True)
class Pyright:
    executable: str
    version: str

    @classmethod
    def find(cls, executable: str | Path | None = None) -> Pyright | None:
        """The type checker to run, or None when there is none (or it does not run).

        ``executable``: that program (a path, or a name looked up on PATH) and no other. Otherwise the
        ``pyright`` or ``basedpyright`` installed beside the running interpreter (this virtual
        environment's, from the dev extra), else the first of them on PATH."""
        for exe in _candidates(executable):
            try:
                done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.SubprocessError):
                continue
            if done.returncode == 0:
                # basedpyright prints two lines ("basedpyright 1.40.2", "based on pyright 1.1.414").
                version = ", ".join(line.strip() for line in done.stdout.splitlines() if line.strip())
                return cls(executable=exe, version=version or Path(exe).name)
        return None

    def errors(self, codes: Mapping[str, str], *, timeout_s: float = 600) -> dict[str, list[str]]:
        """Pyright's errors (basic mode, the running interpreter's Python version and installed
        packages) per snippet: ``{key: ["line 3: message (rule)", ...]}``, only keys with errors."""
        if not codes:
            return {}
        keys = list(codes)
        with tempfile.TemporaryDirectory(prefix="codestill-pyright-") as tmp:
            root = Path(tmp)
            for i, key in enumerate(keys):
                (root / f"s{i}.py").write_text(codes[key], encoding="utf-8")
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            (root / "pyrightconfig.json").write_text(json.dumps({"typeCheckingMode": "basic",
                                                                 "pythonVersion": version}))
            try:
                done = subprocess.run([self.executable, "--outputjson", "--pythonpath", sys.executable,
                                       "-p", str(root), str(root)], capture_output=True, text=True,
                                      timeout=timeout_s, cwd=root)
            except subprocess.TimeoutExpired:
                raise TypecheckError(f"pyright did not finish checking {len(keys)} snippets in {timeout_s:.0f} s; "
                                     "skip the type check (--no-typecheck) or check fewer files") from None
            except OSError as e:
                raise TypecheckError(f"cannot run {self.executable} ({e.strerror}); reinstall pyright or "
                                     "skip the type check (--no-typecheck)") from None
            try:
                report = json.loads(done.stdout)
            except ValueError:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise TypecheckError(f"pyright exited with {done.returncode} and no JSON report ({tail[0]}); "
                                     "reinstall pyright or skip the type check (--no-typecheck)") from None
            by_file = {str((root / f"s{i}.py").resolve()): key for i, key in enumerate(keys)}
            out: dict[str, list[str]] = {}
            for d in report.get("generalDiagnostics", []):
                key = by_file.get(str(Path(d.get("file", "")).resolve()))
                if key is None or d.get("severity") != "error":
                    continue
                line = d.get("range", {}).get("start", {}).get("line", 0) + 1
                rule = f" ({d['rule']})" if d.get("rule") else ""
                out.setdefault(key, []).append(f"line {line}: {d.get('message', '').splitlines()[0]}{rule}")
            return out


_NAMES = ("pyright", "basedpyright")


def _candidates(executable: str | Path | None) -> list[str]:
    """The programs ``Pyright.find`` tries, in order, each once."""
    if executable is not None:
        exe = str(executable)
        found = shutil.which(exe) if Path(exe).name == exe else (exe if Path(exe).is_file() else None)
        return [found] if found else []
    beside = Path(sys.executable).parent  # not resolved: a venv's python is a link to the base one
    found = [str(beside / name) for name in _NAMES if (beside / name).is_file()]
    found += [exe for name in _NAMES if (exe := shutil.which(name)) is not None]
    return list(dict.fromkeys(found))
