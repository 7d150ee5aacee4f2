"""SelfCodeAlign's seed mining: self-contained, documented functions from real Python code, each of
which a teacher later turns into concepts and a new instruction.

A top-level function is a seed when, in this order (the report counts each filter's removals in it):

    no_docstring        it has a docstring
    unparsable          its own source compiles (the file parsed; a function can still fail to compile)
    no_arguments        it takes at least one argument (a leading self/cls not counted)
    too_long            it is at most 150 lines long (decorators and docstring included)
    no_return           it returns a value: a ``return <expr>`` in its own body, not ``return None``
    marker              it contains no TODO, FIXME or BUG (whole upper-case words, anywhere)
    banned_import       neither it nor the module-level imports it uses touch a banned module
                        (``BANNED_MODULES``)
    not_self_contained  every name it reads is a builtin, its own, or bound by a plain top-level
                        ``import``/``from ... import`` of its module; those imports are put before
                        it in the seed's code, so the seed runs on its own in the sandbox
    contaminated        it contains no HumanEval or MBPP problem (``tools.decontam``)
    type_error          Pyright (basic mode) finds no error in the seed's code, where Pyright is
                        installed; otherwise the check is skipped and the report says so
    duplicate           it is no duplicate of a seed kept before it: same id, same normalised code,
                        or MinHash near duplicate at Jaccard >= 0.5 (``tools.dedup``)
    over_limit          (only with a limit) it is among the N seeds kept

The expensive checks (Pyright, deduplication) run on batches of candidates (``SeedMiner.finish``),
so a caller can stream files, checkpoint between batches and resume (``codestill seeds mine``).
"""

from __future__ import annotations

import ast
import hashlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from codestill.errors import SeedMiningError
from codestill.pysrc import parse_quietly
from codestill.schemas import Seed
from tools._seedcheck import (
    MARKERS,
    ModuleScope,
    banned_module,
    free_names,
    is_builtin,
    module_scope,
    own_imports,
    returns_value,
    takes_arguments,
)
from tools.decontam import Decontaminator
from tools.dedup import Deduper
from tools.licence import detect_licence
from tools.mining import STDLIB_SKIP, MinedFunction, mine_source, module_name, source_files, stdlib_root
from tools.typecheck import Pyright

__all__ = ["BANNED_MODULES", "FILTERS", "MAX_LINES", "USER_SKIP", "Removal", "SeedMiner", "SeedMiningError",
           "SeedReport", "SeedSource", "mine_seeds", "seed_source", "seed_sources", "select_spread", "stdlib_source"]

MAX_LINES = 150

# Modules whose use makes a poor seed: the instruction written from it would need the file system,
# processes, the network, a terminal, a display or the interpreter's own set-up, none of which the
# sandbox's unit tests can check. SelfCodeAlign bans os, sys, subprocess, argparse, setuptools,
# distutils, matplotlib and seaborn; the rest are more of the same kind. pathlib is in (its useful
# half touches files); io, fnmatch and logging are not (StringIO, pattern matching and a log line
# are all testable).
BANNED_MODULES = frozenset({
    "os", "sys", "subprocess", "argparse", "setuptools", "distutils", "matplotlib", "seaborn",
    "shutil", "pathlib", "tempfile", "glob", "fileinput",
    "socket", "ssl", "select", "selectors", "http", "urllib.request", "ftplib", "smtplib", "webbrowser",
    "multiprocessing", "threading", "_thread", "concurrent", "asyncio", "signal",
    "ctypes", "resource", "fcntl", "pty", "tty", "termios", "msvcrt", "winreg", "_winapi", "curses", "getpass",
    "tkinter", "turtle", "platform", "sysconfig", "site", "importlib", "runpy",
})

# Folders of a user's tree that hold tests, builds or installed packages rather than its own code.
USER_SKIP = frozenset({"test", "tests", "testing", "__pycache__", "site-packages", "dist-packages", "node_modules",
                       "build", "dist", "venv", "env"})

# Filter keys in the order they apply, with the words the report uses.
FILTERS: dict[str, str] = {
    "no_docstring": "no docstring",
    "unparsable": "does not compile",
    "no_arguments": "takes no arguments",
    "too_long": f"longer than {MAX_LINES} lines",
    "no_return": "returns no value",
    "marker": "TODO / FIXME / BUG",
    "banned_import": "uses a banned module",
    "not_self_contained": "not self-contained",
    "contaminated": "benchmark contamination",
    "type_error": "type errors (pyright)",
    "duplicate": "duplicate",
    "over_limit": "over the limit",
}

# Candidates type-checked and deduplicated together: one Pyright start per batch.
BATCH = 256




class Removal(BaseModel):
    """One function a filter removed; ``matched`` names the benchmark item or kept seed it matched."""

    model_config = ConfigDict(extra="forbid")

    id: str
    filter: str
    detail: str = ""
    matched: str | None = None


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(FILTERS, 0)


class SeedReport(BaseModel):
    """How many functions came in, how many each filter removed (in filter order), how many seeds
    came out, and every removal."""

    model_config = ConfigDict(extra="forbid")

    roots: list[str] = Field(default_factory=list)
    files: int = 0
    files_skipped: int = Field(default=0, description="Files that could not be read or parsed.")
    functions: int = Field(default=0, description="Top-level functions considered (public ones unless private).")
    removed: dict[str, int] = Field(default_factory=_zero_counts)
    seeds: int = 0
    typecheck: str = ""
    removals: list[Removal] = Field(default_factory=list)

    def remove(self, seed_id: str, key: str, detail: str = "", matched: str | None = None) -> None:
        self.removed[key] = self.removed.get(key, 0) + 1
        self.removals.append(Removal(id=seed_id, filter=key, detail=detail, matched=matched))


@dataclass(frozen=True)
class SeedSource:
    """A tree to mine: module names are relative to ``root``; ids start with ``label``."""

    root: Path
    label: str
    licence: str | None
    skip: frozenset[str] = USER_SKIP
    only: Path | None = None  # a single file given instead of a folder

    def files(self) -> list[Path]:
        return [self.only] if self.only is not None else source_files(self.root, skip=self.skip)


def stdlib_source() -> SeedSource:
    """The running interpreter's standard library (PSF licence), the bundled demo's source."""
    return SeedSource(root=stdlib_root(), label="stdlib", licence="PSF-2.0", skip=STDLIB_SKIP)


def seed_source(path: Path) -> SeedSource:
    """A folder (or one ``.py`` file) of the user's. Raises SeedMiningError if it does not exist."""
    if not path.exists():
        raise SeedMiningError(f"{path} does not exist; give a folder of Python code (or --stdlib)")
    resolved = path.resolve()
    if resolved == stdlib_root().resolve():
        return stdlib_source()
    if resolved.is_file():
        if resolved.suffix != ".py":
            raise SeedMiningError(f"{path} is not a Python file; give a folder of Python code or a .py file")
        root = resolved.parent
        return SeedSource(root=root, label=root.name or "root", licence=detect_licence(root), only=resolved)
    return SeedSource(root=resolved, label=resolved.name or "root", licence=detect_licence(resolved))


def select_spread(seeds: Sequence[Seed], limit: int) -> list[Seed]:
    """``limit`` seeds, the same ones on every run, spread over modules: those whose ids hash
    lowest (sha256), in their original order."""
    ranked = sorted(range(len(seeds)), key=lambda i: hashlib.sha256(seeds[i].id.encode()).hexdigest())
    chosen = set(ranked[:limit])
    return [s for i, s in enumerate(seeds) if i in chosen]


def _compiles(code: str, path: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = parse_quietly(code)
        with warnings.catch_warnings():
            # "is with a literal" and friends: the library's, not ours to fix.
            warnings.simplefilter("ignore", SyntaxWarning)
            compile(tree, path or "<seed>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    fn = tree.body[0] if tree.body else None
    return fn if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) else None


class SeedMiner:
    """Applies the filters (module docstring) and keeps the report. One miner per run: it remembers
    the seeds kept so far, for deduplication.

    ``typecheck``: None runs Pyright where it is installed and skips the check otherwise; True
    requires it; False skips it. ``pyright``: the checker's executable (default: ``Pyright.find``'s
    search). ``private`` also considers ``_names``.
    """

    def __init__(self, *, decontaminator: Decontaminator | None = None, deduper: Deduper | None = None,
                 typecheck: bool | None = None, banned: Iterable[str] = BANNED_MODULES, max_lines: int = MAX_LINES,
                 private: bool = False, pyright: str | Path | None = None) -> None:
        self.decontaminator = decontaminator if decontaminator is not None else Decontaminator()
        # Seeds are single functions from one library: two called the same are different functions,
        # so the same-names rule is off (see tools.dedup).
        self.deduper = deduper if deduper is not None else Deduper(threshold=0.5, same_names=False)
        self.banned = frozenset(banned)
        self.max_lines = max_lines
        self.private = private
        self.report = SeedReport()
        self.pyright: Pyright | None = None
        if typecheck is False:
            self.report.typecheck = "skipped: turned off"
        else:
            self.pyright = Pyright.find(pyright)
            if self.pyright is None:
                if typecheck:
                    raise SeedMiningError("the type check needs pyright: install the dev extra (pip install -e "
                                          "'.[dev]', which brings basedpyright), or put pyright on PATH (npm "
                                          "install -g pyright); or mine without it (--no-typecheck)")
                self.report.typecheck = "skipped: pyright is not installed"
            else:
                self.report.typecheck = self.pyright.version

    def _screen(self, fn: MinedFunction, scope: ModuleScope, source: SeedSource) -> Seed | None:
        """The seed ``fn`` makes, or None after recording the filter that removed it (up to the
        lexical ones; decontamination, type check and dedup come later)."""
        seed_id = f"{source.label}:{fn.qualname}"

        def drop(key: str, detail: str = "") -> None:
            self.report.remove(seed_id, key, detail)

        if not fn.docstring.strip():
            return drop("no_docstring")
        node = _compiles(fn.code, fn.path)
        if node is None:
            return drop("unparsable")
        if not takes_arguments(node):
            return drop("no_arguments")
        lines = len(fn.code.splitlines())
        if lines > self.max_lines:
            return drop("too_long", f"{lines} lines")
        if not returns_value(node):
            return drop("no_return")
        marker = MARKERS.search(fn.code)
        if marker:
            return drop("marker", f"contains {marker.group()}")
        free = {name for name in free_names(node) if scope.provides(name) or not is_builtin(name)}
        used = [b for name, b in scope.imports.items() if name in free]
        modules = own_imports(node) + [m for b in used for m in b.modules]
        bad = banned_module(modules, self.banned)
        if bad is not None:
            return drop("banned_import", f"uses {bad}")
        missing = sorted(free - {b.name for b in used})
        if missing:
            more = " (the module has a star import)" if scope.star else ""
            return drop("not_self_contained", "uses module-level names " + ", ".join(missing[:5]) + more)
        relative = next((m for m in modules if m.startswith(".")), None)
        if relative is not None:
            return drop("not_self_contained", f"imports {relative} relative to its package")
        header = [*scope.future, *dict.fromkeys(st for b in used for st in b.statements)]
        code = fn.code if fn.code.endswith("\n") else fn.code + "\n"
        if header:
            code = "\n".join(header) + "\n\n\n" + code
        return Seed(id=seed_id, name=fn.name, signature=fn.signature, docstring=fn.docstring, code=code,
                    module=fn.module, path=fn.path, lineno=fn.lineno, licence=source.licence)

    def from_source(self, text: str, *, module: str, path: str, source: SeedSource) -> list[Seed]:
        """Candidate seeds of one file's text, after every filter up to decontamination."""
        try:
            tree = parse_quietly(text)
        except (SyntaxError, ValueError):
            self.report.files_skipped += 1
            return []
        scope = module_scope(tree)
        screened: list[Seed] = []
        for fn in mine_source(text, module, path, private=self.private, min_doc_chars=0):
            self.report.functions += 1
            seed = self._screen(fn, scope, source)
            if seed is not None:
                screened.append(seed)
        out: list[Seed] = []
        hits = self.decontaminator.check_many([s.code for s in screened], prose=[s.docstring for s in screened])
        for seed, hit in zip(screened, hits, strict=True):
            if hit is None:
                out.append(seed)
            else:
                self.report.remove(seed.id, "contaminated", hit.describe(), matched=hit.item_id)
        return out

    def from_file(self, path: Path, source: SeedSource) -> list[Seed]:
        """Candidate seeds of one file (counted in the report; unreadable files are skipped)."""
        self.report.files += 1
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            self.report.files_skipped += 1
            return []
        return self.from_source(text, module=module_name(path, source.root), path=str(path), source=source)

    def finish(self, candidates: Sequence[Seed]) -> list[Seed]:
        """Type-check and deduplicate a batch of candidates; the seeds kept, in order."""
        errors = self.pyright.errors({c.id: c.code for c in candidates}) if self.pyright and candidates else {}
        kept: list[Seed] = []
        for seed in candidates:
            if seed.id in errors:
                found = errors[seed.id]
                more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
                self.report.remove(seed.id, "type_error", found[0] + more)
                continue
            if seed.id in self.deduper:
                self.report.remove(seed.id, "duplicate", "same id as an earlier seed", matched=seed.id)
                continue
            dup = self.deduper.check_and_add(seed.id, seed.code, seed.code)
            if dup is not None:
                self.report.remove(seed.id, "duplicate", dup.describe(), matched=dup.of)
                continue
            kept.append(seed)
        self.report.seeds += len(kept)
        return kept

    def remember(self, seeds: Iterable[Seed]) -> None:
        """Seeds kept by an earlier, interrupted run: later ones are deduplicated against them."""
        for seed in seeds:
            if seed.id not in self.deduper:
                self.deduper.add(seed.id, seed.code, seed.code)

    def limit(self, seeds: Sequence[Seed], n: int) -> list[Seed]:
        """``select_spread`` with the others counted as removed."""
        chosen = select_spread(seeds, n)
        ids = {s.id for s in chosen}
        for seed in seeds:
            if seed.id not in ids:
                self.report.remove(seed.id, "over_limit")
        self.report.seeds = len(chosen)
        return chosen

    def mine(self, sources: Sequence[SeedSource], *, limit: int | None = None,
             on_file: Callable[[Path], None] | None = None) -> list[Seed]:
        """Every file of every source, in memory; ``on_file`` is called after each file."""
        self.report.roots = [str(s.only or s.root) for s in sources]
        kept: list[Seed] = []
        pending: list[Seed] = []
        for source in sources:
            for path in source.files():
                pending += self.from_file(path, source)
                if len(pending) >= BATCH:
                    kept += self.finish(pending)
                    pending = []
                if on_file is not None:
                    on_file(path)
        kept += self.finish(pending)
        return self.limit(kept, limit) if limit is not None else kept


def seed_sources(paths: Sequence[Path] = (), *, stdlib: bool = False) -> list[SeedSource]:
    """The trees to mine: the standard library first with ``stdlib``, then ``paths``; none is an error."""
    sources = [*([stdlib_source()] if stdlib else []), *(seed_source(p) for p in paths)]
    if not sources:
        raise SeedMiningError("nothing to mine: give folders of Python code, or --stdlib for the standard library")
    return sources


def mine_seeds(paths: Sequence[Path] = (), *, stdlib: bool = False, limit: int | None = None,
               typecheck: bool | None = None) -> tuple[list[Seed], SeedReport]:
    """Mine the given folders (and the standard library with ``stdlib``) with the default filters."""
    sources = seed_sources(paths, stdlib=stdlib)
    miner = SeedMiner(typecheck=typecheck)
    seeds = miner.mine(sources, limit=limit)
    return seeds, miner.report
