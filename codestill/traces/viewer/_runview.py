"""The run page's model: the span tree, a waterfall of nodes / LLM calls / sandbox runs, the LLM
calls, and (for solve runs) the attempts with their diffs, test results, critiques and routes, and
the memory modules retrieved with their scores.

Everything comes from the trace store alone: the root span's final state holds the ``Trajectory``;
the route a critique chose is the output of the routing function LangGraph traced under that node.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codestill.traces import Span, SpanTree

_ROUTERS = ("route", "_ended", "fan_out", "after_select")


def is_sandbox(span: Span) -> bool:
    return span.kind == "tool" or (span.kind == "chain" and span.name.startswith("sandbox"))


@dataclass
class Bar:
    """One waterfall row; ``left`` and ``width`` in percent of the run's duration."""

    span: Span
    depth: int
    left: float
    width: float


@dataclass
class DiffLine:
    kind: str  # add | del | hunk | same
    text: str


@dataclass
class AttemptView:
    number: int
    plan_index: int | None
    round: int
    code: str
    diff: list[DiffLine] | None  # against the previous attempt of the same plan; None for the first
    previous: int | None
    result: Mapping[str, Any] | None
    critique: Mapping[str, Any] | None
    route: str | None


@dataclass
class HitView:
    spec: str
    module_id: str
    name: str
    signature: str
    score: float
    reused: bool
    code: str


@dataclass
class RunView:
    tree: SpanTree
    bars: list[Bar]
    llm: list[Span]
    trajectory: Mapping[str, Any]
    attempts: list[AttemptView] = field(default_factory=list)
    hits: list[HitView] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def waterfall(tree: SpanTree) -> list[Bar]:
    """Nodes, LLM calls and sandbox runs on one time axis, in tree order, indented by node depth."""
    root = tree.root
    t0 = root.start.timestamp()
    ends = [s.end.timestamp() for s in tree.walk() if s.end is not None]
    total = max([*ends, t0 + 1e-6]) - t0
    bars: list[Bar] = []

    def visit(span: Span, depth: int) -> None:
        shown = span is root or span.kind in ("node", "llm", "retriever") or is_sandbox(span)
        if shown:
            start = span.start.timestamp() - t0
            end = (span.end.timestamp() if span.end else t0 + total) - t0
            bars.append(Bar(span, depth, 100 * start / total, max(0.15, 100 * (end - start) / total)))
        for child in span.children:
            visit(child, depth + 1 if shown else depth)

    visit(root, 0)
    return bars


def diff_lines(before: str, after: str) -> list[DiffLine]:
    out: list[DiffLine] = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), "previous", "this", n=3,
                                     lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        kind = "hunk" if line.startswith("@@") else {"+": "add", "-": "del"}.get(line[:1], "same")
        out.append(DiffLine(kind, line))
    return out


def _routes(tree: SpanTree) -> dict[int, list[str]]:
    """Per plan index, where the graph went after each critique, in the order they ran."""
    out: dict[int, list[str]] = {}
    critiques = sorted((s for s in tree.walk() if s.kind == "node" and s.name == "critique"),
                       key=lambda s: s.start)
    for span in critiques:
        route = next((str(c.outputs) for c in span.children if c.name in _ROUTERS and c.outputs is not None),
                     None)
        refs = span.outputs.get("attempts") if isinstance(span.outputs, Mapping) else None
        for ref in refs or ():
            if isinstance(ref, Mapping) and route is not None:
                out.setdefault(int(ref.get("plan_index") or 0), []).append(route)
    return out


def _attempts(trajectory: Mapping[str, Any], tree: SpanTree) -> list[AttemptView]:
    routes = _routes(tree)
    last_of_plan: dict[Any, tuple[int, str]] = {}
    seen: dict[int, int] = {}
    out = []
    for i, a in enumerate(trajectory.get("attempts") or (), 1):
        if not isinstance(a, Mapping):
            continue
        plan, code = a.get("plan_index"), str(a.get("code") or "")
        prev = last_of_plan.get(plan)
        k = seen.get(plan or 0, 0)
        seen[plan or 0] = k + 1
        plan_routes = routes.get(plan or 0, [])
        out.append(AttemptView(
            number=i, plan_index=plan, round=int(a.get("round") or 0), code=code,
            diff=None if prev is None else diff_lines(prev[1], code), previous=None if prev is None else prev[0],
            result=a.get("result"), critique=a.get("critique"),
            route=plan_routes[k] if k < len(plan_routes) else None))
        last_of_plan[plan] = (i, code)
    return out


def _hits(trajectory: Mapping[str, Any]) -> list[HitView]:
    reused = set(trajectory.get("reused_modules") or ())
    out = []
    for h in trajectory.get("memory_hits") or ():
        module = h.get("module") or {}
        out.append(HitView(spec=str(h.get("spec_name", "")), module_id=str(module.get("id", "")),
                           name=str(module.get("name", "")), signature=str(module.get("signature", "")),
                           score=float(h.get("score") or 0.0), reused=module.get("id") in reused,
                           code=str(module.get("code", ""))))
    return sorted(out, key=lambda h: -h.score)


def run_view(tree: SpanTree) -> RunView:
    outputs = tree.root.outputs
    trajectory = outputs.get("trajectory") if isinstance(outputs, Mapping) else None
    trajectory = trajectory if isinstance(trajectory, Mapping) else {}
    view = RunView(tree=tree, bars=waterfall(tree), llm=[s for s in tree.walk() if s.kind == "llm"],
                   trajectory=trajectory)
    if trajectory:
        view.attempts = _attempts(trajectory, tree)
        view.hits = _hits(trajectory)
        view.added = list(trajectory.get("added_modules") or ())
    return view
