"""Mining functions from real source trees: top-level functions with docstrings, each with its name,
def line, docstring and code. The memory's tests and benchmark mine the CPython standard library on
the machine (PSF licence); SelfCodeAlign's seed mining reuses ``mine_source`` / ``mine_tree`` with its
own filters.
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codestill.pysrc import parse_quietly
from tools.code import describe_function

__all__ = ["STDLIB_SKIP", "MinedFunction", "mine_source", "mine_tree", "module_name", "source_files", "stdlib_root"]

# Folders of the stdlib that are tests, demos or bundled third-party code, not library functions.
STDLIB_SKIP = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "lib2to3",
                         "turtledemo", "idlelib", "ensurepip", "__pycache__", "venv", "tkinter"})


@dataclass(frozen=True)
class MinedFunction:
    module: str  # dotted module name, e.g. "textwrap" or "email.utils"
    name: str
    signature: str
    docstring: str
    code: str  # the function's source as written (decorators included)
    path: str
    lineno: int
    shape: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


def stdlib_root() -> Path:
    """Where the running interpreter's standard library sources are."""
    return Path(sysconfig.get_paths()["stdlib"])


def mine_source(source: str, module: str, path: str = "", *, private: bool = False,
                min_doc_chars: int = 1, keep: Callable[[MinedFunction], bool] | None = None) -> list[MinedFunction]:
    """Top-level functions of one source file that have a docstring of at least ``min_doc_chars``.
    ``private`` also keeps ``_names``. Code that does not parse gives no functions."""
    try:
        tree = parse_quietly(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines(keepends=True)
    out: list[MinedFunction] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_") and not private:
            continue
        doc = ast.get_docstring(node) or ""
        if len(doc.strip()) < min_doc_chars:
            continue
        start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
        info = describe_function(node)
        fn = MinedFunction(module=module, name=node.name, signature=info.signature, docstring=doc,
                           code="".join(lines[start:node.end_lineno]), path=path, lineno=node.lineno,
                           shape=info.shape)
        if keep is None or keep(fn):
            out.append(fn)
    return out


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` under ``root``: ``email/utils.py`` -> ``email.utils``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or path.stem


def mine_tree(root: Path, *, skip: Iterable[str] = STDLIB_SKIP, private: bool = False,
              min_doc_chars: int = 1, keep: Callable[[MinedFunction], bool] | None = None) -> Iterator[MinedFunction]:
    """Functions of every file ``source_files`` lists; files that cannot be read or parsed are
    passed over."""
    for path in source_files(root, skip=skip):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield from mine_source(source, module_name(path, root), str(path), private=private,
                               min_doc_chars=min_doc_chars, keep=keep)


def source_files(root: Path, *, skip: Iterable[str] = STDLIB_SKIP) -> list[Path]:
    """The ``*.py`` files under ``root``, sorted (so the order is stable), leaving out folders named in
    ``skip`` and hidden folders (``.git``, ``.venv``, ...)."""
    skip = frozenset(skip)
    return [path for path in sorted(root.rglob("*.py"))
            if not any(part in skip or part.startswith(".") for part in path.relative_to(root).parts[:-1])]
