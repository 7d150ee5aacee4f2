"""Two runs of one task side by side: verdicts, reasons, and where their routes through the graph part.

A route is one line per top-level node in start order; a branch (one per plan, run concurrently) is
one line of its own nodes, and concurrent branches are listed by (plan round, plan index) so their
start order, which is not deterministic, never shows as a difference. Nodes whose outcome steers
the route carry it: ``critique=repair``, ``test 3/4``, ``select=accepted``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from codestill.traces._models import Span, SpanTree


@dataclass(frozen=True)
class Comparison:
    """What a replay changed: verdicts and reasons of both runs, and a diff of their routes."""

    original_verdict: str | None
    original_reason: str | None
    replayed_verdict: str | None
    replayed_reason: str | None
    original_route: tuple[str, ...]
    replayed_route: tuple[str, ...]
    route_diff: tuple[str, ...]  # unified-diff body lines ("-", "+", " "); empty when the routes agree

    @property
    def same(self) -> bool:
        return (self.original_verdict == self.replayed_verdict and self.original_reason == self.replayed_reason
                and not self.route_diff)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _node_label(span: Span) -> str:
    out = _dict(span.outputs)
    label = span.name
    if span.name == "critique" and isinstance(_dict(out.get("critique")).get("verdict"), str):
        label += "=" + out["critique"]["verdict"]
    elif span.name == "test" and isinstance(out.get("passed"), int) and isinstance(out.get("total"), int):
        label += f" {out['passed']}/{out['total']}"
    elif span.name == "select" and isinstance(out.get("verdict"), str):
        label += "=" + out["verdict"]
    if span.status != "ok":
        label += f" ({span.status})"
    return label


def _inner_nodes(span: Span) -> list[Span]:
    found: list[Span] = []
    for child in span.children:
        if child.kind == "node":
            found.append(child)
        else:
            found += _inner_nodes(child)
    return found


def _branch_line(span: Span) -> tuple[tuple[int, int], str]:
    inputs = _dict(span.inputs)
    key = (int(inputs.get("plan_round", 0) or 0), int(inputs.get("plan_index", 0) or 0))
    steps = " > ".join(_node_label(n) for n in _inner_nodes(span)) or "(no nodes)"
    status = "" if span.status == "ok" else f" ({span.status})"
    return key, f"branch r{key[0]}.p{key[1]}{status}: {steps}"


def route(tree: SpanTree) -> list[str]:
    """The run's path through the graph, one line per node (a branch is one line of its own nodes)."""
    lines: list[str] = []
    branches: list[tuple[tuple[int, int], str]] = []
    for span in tree.root.children:
        if span.kind != "node":
            continue
        if _inner_nodes(span):
            branches.append(_branch_line(span))
            continue
        lines += [line for _, line in sorted(branches)]
        branches = []
        lines.append(_node_label(span))
    lines += [line for _, line in sorted(branches)]
    if tree.root.status not in ("ok", "running"):
        why = tree.root.error.splitlines()[0][:200] if tree.root.error else ""
        lines.append(f"(run ended: {tree.root.status}{': ' + why if why else ''})")
    return lines


def verdict_of(tree: SpanTree) -> tuple[str | None, str | None]:
    """The run's (verdict, reason) from its trajectory; (None, error) for a run that ended without one."""
    trajectory = _dict(_dict(tree.root.outputs).get("trajectory"))
    if trajectory:
        return trajectory.get("verdict"), trajectory.get("reason")
    return tree.root.verdict, tree.root.error


def compare(original: SpanTree, replayed: SpanTree) -> Comparison:
    before, after = route(original), route(replayed)
    diff = [line for line in difflib.unified_diff(before, after, lineterm="", n=1)
            if not line.startswith(("---", "+++", "@@"))]
    (v1, r1), (v2, r2) = verdict_of(original), verdict_of(replayed)
    return Comparison(v1, r1, v2, r2, tuple(before), tuple(after), tuple(diff))
