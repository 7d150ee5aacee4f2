"""The house rules of DESIGN.md, checked from the code's own imports.

Every module sits on a floor; it may import its own floor and the floors below, never one above. A
floor lists packages or modules by name (the longest match wins), so a new module lands on its
package's floor without touching this file. ``import graphs`` loads no backend.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("codestill", "tools", "memory", "agents", "graphs", "training")

# Bottom to top. ``codestill`` alone is the spine's ground floor (schemas, config, errors, records, ports,
# benchmark data); its wings name themselves.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("codestill",),
    ("codestill.llm", "codestill.structured", "codestill._capability", "codestill._hf_batch", "codestill._hf_chat",
     "codestill._hf_decode", "codestill._models", "codestill._openai_chat", "codestill.traces"),
    ("tools",),
    ("memory",),
    ("agents",),
    ("graphs",),
    ("codestill.sim",),
    ("codestill.run",),
    ("training",),
    ("codestill.cli",),
)
# What the agents and the graphs may import besides their own package: records, settings, the ports,
# structured replies, and the code tools that only read Python (no I/O). Not the benchmark data (for the
# sim, decontamination and evaluation: an agent that read it would be reading the answer key), never a
# backend (tools.sandbox, memory), the run wing or the CLI.
_PURE = ("codestill.schemas", "codestill.config", "codestill.errors", "codestill.records", "codestill.ports",
         "codestill.pysrc", "codestill.structured", "tools.code", "tools.leaks", "tools.mutants")
ALLOWED = {"agents": _PURE, "graphs": ("agents", *_PURE)}
# httpx is not here: LangGraph itself loads it (langgraph.runtime imports its SDK's client).
BACKENDS = ("docker", "chromadb", "openai", "langchain_openai", "torch", "transformers", "sentence_transformers",
            "ray", "numpy", "sqlite3")


@functools.cache
def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


@functools.cache
def imports() -> dict[str, frozenset[str]]:
    """Each project module -> the project modules it imports (at any depth of the file: lazy imports
    inside functions count, since they run when the function does)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")[: len(mod.split(".")) - node.level + (path.name == "__init__.py")]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target not in mods and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in mods and target != mod:
                    edges[mod].add(target)
    return {m: frozenset(ts) for m, ts in edges.items()}


def floor(mod: str) -> int:
    best, level = -1, -1
    for i, names in enumerate(FLOORS):
        for name in names:
            if (mod == name or mod.startswith(name + ".")) and len(name) > best:
                best, level = len(name), i
    assert level >= 0, f"{mod} is on no floor: add its package to FLOORS"
    return level


def up_arrows(edges: Mapping[str, AbstractSet[str]]) -> list[str]:
    return [f"{m} (floor {floor(m)}) imports {t} (floor {floor(t)})"
            for m, targets in sorted(edges.items()) for t in sorted(targets) if floor(t) > floor(m)]


def test_no_import_runs_up_a_floor() -> None:
    up = up_arrows(imports())
    assert not up, "imports that run up the house:\n" + "\n".join(up)


def test_agents_and_graphs_import_only_what_they_are_allowed() -> None:
    bad = [f"{m} imports {t}" for m, targets in imports().items() if m.split(".")[0] in ALLOWED
           for t in targets if t.split(".")[0] != m.split(".")[0]
           and not any(t == a or t.startswith(a + ".") for a in ALLOWED[m.split(".")[0]])]
    assert not bad, "\n".join(bad)


def cycles(edges: Mapping[str, AbstractSet[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def package_imports() -> dict[str, set[str]]:
    """Imports between packages (the top-level ones and their sub-packages: ``codestill.run``,
    ``codestill.cli``, ``tools.sandbox`` ...), a package's own modules taken as one. The spine's modules
    outside a sub-package are its ground floor, ``codestill``."""
    mods = _modules()
    packages = {m for m, p in mods.items() if p.name == "__init__.py"}

    def owner(m: str) -> str:
        return m if m in packages else m.rsplit(".", 1)[0]

    between: dict[str, set[str]] = {}
    for m, targets in imports().items():
        for t in targets:
            a, b = owner(m), owner(t)
            if a != b:
                between.setdefault(a, set()).add(b)
    return between


def test_no_circle_between_packages() -> None:
    """A package's ``__init__`` may re-export its own modules (and a sub-package's), so circles are
    counted between packages, not modules: a circle there would be two floors that cannot be told apart."""
    between = package_imports()
    # A parent's __init__ re-exporting its sub-package is not a circle; a sub-package importing its
    # parent's other modules is (for the spine that is the ground floor, which never imports up).
    for a in list(between):
        between[a] = {b for b in between[a] if not b.startswith(a + ".")}
    assert cycles(between) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    """The checkers themselves: a planted circle and planted up-arrows are reported (the arrows the
    structure issue found: the checkpointer reaching into graphs, the sim into the CLI)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    planted = {**imports(), "codestill.records": {"graphs._state"}, "codestill.sim._serve": {"codestill.cli._sim"}}
    assert [a.split(" (")[0] for a in up_arrows(planted)] == ["codestill.records", "codestill.sim._serve"]
    assert floor("codestill.cli._eval") > floor("training.export") > floor("codestill.run._ledger")


def loaded_by(module: str) -> list[str]:
    code = f"import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout)


def test_importing_the_graphs_loads_no_backend() -> None:
    loaded = loaded_by("graphs")
    backends = sorted({m.split(".")[0] for m in loaded} & set(BACKENDS))
    assert backends == [], f"import graphs loads {backends}"
    assert "codestill.cli" not in loaded and "codestill.run" not in loaded
