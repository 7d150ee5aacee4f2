"""The graph page: the compiled LangGraph graph drawn as SVG (layout by grandalf's Sugiyama layering),
with the path one run took over it, how often each node ran and each edge was taken, and per node
run what that node wrote into the state.

The drawing comes from ``CompiledGraph.get_graph(xray=1)`` (handed in by the CLI, which may import
``graphs``), never from the spans: a node the run never reached is drawn all the same. Spans map
onto it by name: a node inside a subgraph node ``branch`` is ``branch:draft`` in both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

from codestill.traces import Span, SpanTree

_CHAR_W, _BOX_H, _PAD = 7.5, 30.0, 24.0
START, END = "__start__", "__end__"


class DrawableGraph(Protocol):
    """What ``langchain_core.runnables.graph.Graph`` offers (``compiled.get_graph(xray=1)``)."""

    nodes: Mapping[str, Any]
    edges: list[Any]


@dataclass
class NodeBox:
    id: str
    label: str
    x: float
    y: float
    w: float
    h: float
    visits: int


@dataclass
class EdgePath:
    source: str
    target: str
    d: str
    conditional: bool
    taken: int
    label_x: float
    label_y: float


@dataclass
class StateChange:
    key: str
    changed: bool
    value: Any


@dataclass
class NodeRun:
    span: Span
    graph_id: str
    step: int | None
    changes: list[StateChange]


@dataclass
class GraphView:
    width: float
    height: float
    nodes: list[NodeBox]
    edges: list[EdgePath]
    runs: list[NodeRun] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # nodes that ran but the drawn graph lacks


class _VertexView:
    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.pts: list[tuple[float, float]] = []

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.pts = list(pts)


def _label(node: Any, nid: str) -> str:
    return {START: "start", END: "end"}.get(nid, str(getattr(node, "name", nid) or nid))


def layout(graph: DrawableGraph) -> tuple[float, float, list[NodeBox], list[tuple[Any, list[tuple[float, float]]]]]:
    """Boxes and edge polylines of ``graph``; components side by side, top to bottom."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    # grandalf's layouts read and write a ``view`` its classes do not declare: ours do.
    class _Vertex(Vertex):
        view: _VertexView

    class _Edge(Edge):
        view: _EdgeView

    vertices = {nid: _Vertex(nid) for nid in graph.nodes}
    for nid, v in vertices.items():
        v.view = _VertexView(len(_label(graph.nodes[nid], nid)) * _CHAR_W + 24, _BOX_H)
    edges = []
    for e in graph.edges:
        if e.source in vertices and e.target in vertices and e.source != e.target:
            edge = _Edge(vertices[e.source], vertices[e.target], data=e)
            edge.view = _EdgeView()
            edges.append(edge)
    g = Graph(list(vertices.values()), edges)
    offset, height = 0.0, 0.0
    for component in g.C:
        sug = SugiyamaLayout(component)
        roots = [v for v in component.sV if v.data == START]
        sug.init_all(roots=roots or None)
        sug.yspace, sug.xspace = 46, 28
        sug.draw()
        # the component's own vertices and edges (all ours: the layout's dummies are not in them)
        sv = [v for v in component.sV if isinstance(v, _Vertex)]
        se = [e for e in component.sE if isinstance(e, _Edge)]
        # Edge routes pass through dummy vertices that may lie outside the boxes: they count too.
        pts = [p for e in se for p in e.view.pts]
        shift = offset - min([*(v.view.xy[0] - v.view.w / 2 for v in sv), *(x for x, _ in pts)]) + _PAD
        for v in sv:
            v.view.xy = (v.view.xy[0] + shift, v.view.xy[1] + _PAD)
        for e in se:
            e.view.pts = [(x + shift, y + _PAD) for x, y in e.view.pts]
        pts = [p for e in se for p in e.view.pts]
        offset = max([*(v.view.xy[0] + v.view.w / 2 for v in sv), *(x for x, _ in pts)])
        height = max([height, *(v.view.xy[1] + v.view.h / 2 for v in sv), *(y for _, y in pts)])
    boxes = [NodeBox(nid, _label(graph.nodes[nid], nid), v.view.xy[0] - v.view.w / 2,
                     v.view.xy[1] - v.view.h / 2, v.view.w, v.view.h, 0) for nid, v in vertices.items()]
    lines = []
    for e in edges:
        pts = e.view.pts or [e.v[0].view.xy, e.v[1].view.xy]
        src, dst = e.v[0].view.xy, e.v[1].view.xy
        if _dist(pts[0], dst) < _dist(pts[0], src):  # grandalf reversed it to break a cycle
            pts = pts[::-1]
        lines.append((e.data, pts))
    return offset + _PAD, height + _PAD, boxes, lines


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _clip(pts: list[tuple[float, float]], src: NodeBox, dst: NodeBox) -> list[tuple[float, float]]:
    """Routes run centre to centre; start and end them at the boxes' edges, so arrowheads show."""
    if len(pts) < 2:
        return pts
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    start = (x0, src.y + src.h if pts[1][1] >= y0 else src.y)
    end = (x1, dst.y if pts[-2][1] <= y1 else dst.y + dst.h)
    return [start, *pts[1:-1], end]


def _path(pts: list[tuple[float, float]]) -> str:
    return "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in pts)


def _step(span: Span) -> int | None:
    meta = (span.extra or {}).get("metadata") or {}
    step = meta.get("langgraph_step")
    return step if isinstance(step, int) else None


def _node_children(span: Span) -> list[Span]:
    """The node spans one level below ``span`` (through the subgraph's own chain span)."""
    out: list[Span] = []
    for child in span.children:
        out.extend([child] if child.kind == "node" else _node_children(child))
    return out


def _changes(span: Span) -> list[StateChange]:
    out = span.outputs if isinstance(span.outputs, Mapping) else {}
    before = span.inputs if isinstance(span.inputs, Mapping) else {}
    return [StateChange(k, k not in before or before[k] != v, v) for k, v in out.items()]


def trace_path(tree: SpanTree, known: set[str], edges: set[tuple[str, str]]) -> tuple[
        list[NodeRun], Counter[str], Counter[tuple[str, str]]]:
    """Node runs in order, visits per node and transitions per edge, read off the span tree."""
    runs: list[NodeRun] = []
    visits: Counter[str] = Counter()
    taken: Counter[tuple[str, str]] = Counter()

    def level(parent: Span, prefix: str) -> tuple[list[str], list[str]]:
        """Walks one graph level; returns the ids it is entered at and left from."""
        nodes = sorted(_node_children(parent), key=lambda s: (_step(s) or 0, s.start))
        groups: list[list[tuple[list[str], list[str]]]] = []
        last_step: object = object()
        for span in nodes:
            gid = f"{prefix}{span.name}"
            runs.append(NodeRun(span, gid, _step(span), _changes(span)))
            if gid in known or not _node_children(span):
                visits[gid] += 1
                ends = ([gid], [gid])
            else:  # a subgraph node: entered at its first inner node, left from its last
                ends = level(span, f"{gid}:")
            if _step(span) != last_step or not groups:
                groups.append([])
                last_step = _step(span)
            groups[-1].append(ends)
        for before, after in pairwise(groups):
            for _, exits in before:
                for entries, _ in after:
                    for a in exits:
                        for b in entries:
                            if (a, b) in edges:
                                taken[(a, b)] += 1
        if not groups:
            return [], []
        return ([i for entries, _ in groups[0] for i in entries], [o for _, exits in groups[-1] for o in exits])

    entries, exits = level(tree.root, "")
    for b in entries:
        if (START, b) in edges:
            taken[(START, b)] += 1
            visits[START] += 1
    for a in exits:
        if (a, END) in edges:
            taken[(a, END)] += 1
            visits[END] += 1
    return runs, visits, taken


def graph_view(graph: DrawableGraph, tree: SpanTree) -> GraphView:
    width, height, boxes, lines = layout(graph)
    edge_set = {(e.source, e.target) for e in graph.edges}
    runs, visits, taken = trace_path(tree, set(graph.nodes), edge_set)
    for box in boxes:
        box.visits = visits.get(box.id, 0)
    paths = []
    by_id = {b.id: b for b in boxes}
    for data, pts in lines:
        pts = _clip(pts, by_id[data.source], by_id[data.target])
        mid = pts[len(pts) // 2] if len(pts) > 2 else ((pts[0][0] + pts[-1][0]) / 2, (pts[0][1] + pts[-1][1]) / 2)
        paths.append(EdgePath(data.source, data.target, _path(pts), bool(data.conditional),
                              taken.get((data.source, data.target), 0), mid[0] + 4, mid[1]))
    unknown = sorted({r.graph_id for r in runs if r.graph_id not in graph.nodes and _node_children(r.span) == []})
    return GraphView(width, height, boxes, paths, runs, unknown)
