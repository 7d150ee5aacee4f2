"""The viewer's Starlette app: server-rendered pages (Jinja2) over one trace store and its runs index.

Every page is a plain GET whose URL names what it shows (filters, run id, span id), so links can be
shared. The store is opened read-only per request (sqlite3 connections stay on their thread); the
index is shared and guarded by its lock. A bad id or filter is a page that says so, never a 500.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from codestill.errors import TraceStoreError
from codestill.traces import Span, TraceStore
from codestill.traces._models import content_text
from codestill.traces.viewer._compare import compare
from codestill.traces.viewer._dashboard import PERCENTILES, dashboard
from codestill.traces.viewer._graphview import DrawableGraph, graph_view
from codestill.traces.viewer._index import RunIndex
from codestill.traces.viewer._payload import PayloadView, get_path, pretty_json
from codestill.traces.viewer._query import PER_PAGE, SORTS, FilterError, RunFilter, facets, query_runs

GraphSource = Callable[[str], DrawableGraph | None]
_HERE = Path(__file__).parent
_COLUMNS = [("id", "run"), ("graph", "graph"), ("task_id", "task"), ("status", "status"), ("verdict", "verdict"),
            ("reason", "reason"), ("model", "model"), ("duration", "duration"), ("tokens", "tokens"),
            ("llm_calls", "LLM calls"), ("attempts", "attempts"), ("spans", "spans"), ("start", "start (UTC)")]


class Viewer:
    """The pages of one store. ``graphs`` maps a root span's name to its compiled graph's drawing."""

    def __init__(self, store: Path, index: RunIndex, graphs: GraphSource | None = None) -> None:
        self.store = store
        self.index = index
        self.graphs = graphs
        self.env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(base="", store=str(store))
        self._facet_cache: tuple[int, dict[str, list[str]]] | None = None

    def _facets(self) -> dict[str, list[str]]:
        """The filters' choices, read again only after the index took in new runs (~20 ms at 100,000)."""
        if self._facet_cache is None or self._facet_cache[0] != self.index.generation:
            self._facet_cache = (self.index.generation, facets(self.index.conn))
        return self._facet_cache[1]

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    def error(self, title: str, message: str, status: int = 404) -> HTMLResponse:
        return self.page("error.html", status, title=title, message=message)

    # ---- the runs list ------------------------------------------------------------------------

    def runs(self, request: Request) -> Response:
        """``/``: the runs list; every filter, the sort and the page come from the query string."""
        self.index.refresh()
        error = None
        try:
            f = RunFilter.from_params(request.query_params)
        except FilterError as e:
            f, error = RunFilter(), str(e)
        with self.index.lock:
            live = self.index.live_writers()
            try:
                page = query_runs(self.index.conn, f, live)
            except FilterError as e:
                error = str(e)
                f = RunFilter()
                page = query_runs(self.index.conn, f, live)
            values = self._facets()

        def sort_link(col: str) -> str:
            desc = not f.desc if f.sort == col else col in ("start", "duration", "tokens", "llm_calls", "spans")
            return urlencode(f.to_params(sort=col, desc=desc, page=1))

        return self.page("runs.html", f=f, page=page, facets=values, error=error, columns=_COLUMNS, sorts=SORTS,
                         per_pages=PER_PAGE, sort_link=sort_link,
                         page_link=lambda n: urlencode(f.to_params(page=n)))

    # ---- one run ------------------------------------------------------------------------------

    def run(self, request: Request) -> Response:
        """``/runs/{id}``: one run; ``?span=`` opens that span (the page's shareable link)."""
        from codestill.traces.viewer._runview import run_view
        with TraceStore(self.store) as store:
            tree = store.tree(request.path_params["run"], payloads=True)
        root = tree.root
        siblings: list[Any] = []
        if root.task_id:
            with self.index.lock:
                f = RunFilter(task=root.task_id, per_page=25)
                siblings = [r for r in query_runs(self.index.conn, f, self.index.live_writers()).rows
                            if r.id != root.id]
        return self.page("run.html", tree=tree, root=root, v=run_view(tree), siblings=siblings,
                         tokens=sum(s.tokens for s in tree.walk()))

    def _span(self, request: Request) -> tuple[str, Span]:
        with TraceStore(self.store) as store:
            rid = store.resolve(request.path_params["run"])
            span = store.span(request.path_params["span"])
        return rid, span

    def span(self, request: Request) -> Response:
        """``/runs/{id}/spans/{span}``: one span's details as an HTML fragment, fetched when opened."""
        rid, span = self._span(request)
        url = f"/runs/{rid}/spans/{span.id}"
        context: dict[str, Any] = {"span": span, "rid": rid, "url": url, "messages": None}
        if span.kind == "llm" and isinstance(span.inputs, Mapping):
            context.update(self._llm(span, url))
        else:
            context["inputs"] = PayloadView(url, "inputs").render(span.inputs)
            context["outputs"] = PayloadView(url, "outputs").render(span.outputs)
            context["extra"] = PayloadView(url, "extra").render(span.extra) if span.extra else None
        return self.page("span.html", **context)

    @staticmethod
    def _llm(span: Span, url: str) -> dict[str, Any]:
        """Messages and reply of an LLM span, each long text with its own link to the whole."""
        view_in, view_out = PayloadView(url, "inputs"), PayloadView(url, "outputs")
        inputs = span.inputs if isinstance(span.inputs, Mapping) else {}
        messages = []
        for b, batch in enumerate(inputs.get("messages") or [[p] for p in inputs.get("prompts") or []]):
            for i, m in enumerate(batch):
                m = m if isinstance(m, Mapping) else {"role": "prompt", "content": m}
                path = f"messages.{b}.{i}.content" if "messages" in inputs else f"prompts.{b}"
                messages.append({"role": m.get("role", "?"), "body": view_in.text(content_text(m.get("content")), path)})
        outputs = span.outputs if isinstance(span.outputs, Mapping) else {}
        generations = []
        for i, g in enumerate(outputs.get("generations") or ()):
            text = content_text(g.get("content", g.get("text", "")))
            # A reply whose tool call could not be parsed keeps it under invalid_tool_calls: shown, not hidden.
            tools = {k: g[k] for k in ("tool_calls", "invalid_tool_calls") if g.get(k)}
            generations.append({"role": g.get("role", "ai"), "body": view_out.text(text, f"generations.{i}.content"),
                                "tools": view_out.text(pretty_json(tools), f"generations.{i}") if tools else None})
        rest = {k: v for k, v in outputs.items() if k != "generations"}
        usage = PayloadView(url, "extra").render({**rest, **(span.extra or {})}) if rest or span.extra else None
        return {"messages": messages, "generations": generations, "usage": usage}

    def whole(self, request: Request) -> Response:
        """The whole of one payload value: ``/text`` as plain text, ``/raw`` as indented JSON."""
        if request.path_params["kind"] not in ("text", "raw"):
            return PlainTextResponse("not found; a span's whole payload is at .../text or .../raw", 404)
        _, span = self._span(request)
        field = request.query_params.get("field", "outputs")
        if field not in ("inputs", "outputs", "extra"):
            return PlainTextResponse(f"no payload field {field!r}; use inputs, outputs or extra", 404)
        try:
            value = get_path(getattr(span, field), request.query_params.get("path", ""))
        except KeyError as e:
            return PlainTextResponse(f"no {e.args[0]!r} in the span's {field}", 404)
        if request.path_params["kind"] == "text" and isinstance(value, str):
            return PlainTextResponse(value)
        return Response(pretty_json(value), media_type="application/json")

    # ---- graph, compare, dashboard ------------------------------------------------------------

    def graph(self, request: Request) -> Response:
        """``/runs/{id}/graph``: the compiled graph with this run's path, loop counts and state writes."""
        with TraceStore(self.store) as store:
            tree = store.tree(request.path_params["run"], payloads=True)
        drawn = self.graphs(tree.root.name) if self.graphs else None
        missing = (f"No compiled graph named {tree.root.name!r} is known to this viewer (the graphs in "
                   "langgraph.json are); the span tree on the run page still shows the path.")

        def render(span: Span, key: str) -> Markup:
            value = span.outputs.get(key) if isinstance(span.outputs, Mapping) else None
            return PayloadView(f"/runs/{tree.root.id}/spans/{span.id}", "outputs").render_at(value, key)

        return self.page("graph.html", root=tree.root, g=None if drawn is None else graph_view(drawn, tree),
                         missing=missing, render=render)

    def compare(self, request: Request) -> Response:
        """``/compare?a=&b=``: two runs aligned by graph path, and where they first diverge."""
        a, b = request.query_params.get("a", "").strip(), request.query_params.get("b", "").strip()
        context: dict[str, Any] = {"a_id": a, "b_id": b, "cmp": None, "error": None}
        if a and b:
            try:
                with TraceStore(self.store) as store:
                    ta, tb = store.tree(a), store.tree(b)
            except TraceStoreError as e:
                context["error"] = str(e)
            else:
                context.update(ta=ta, tb=tb, cmp=compare(ta, tb), a_id=ta.root.id, b_id=tb.root.id)
        return self.page("compare.html", **context)

    def dashboard(self, request: Request) -> Response:
        """``/dashboard``: the batch's funnel, rejection reasons, per-agent percentiles, yield over time."""
        self.index.refresh()
        graph = request.query_params.get("graph", "")
        with self.index.lock:
            d = dashboard(self.index.conn, graph)
            graphs = self._facets()["graph"]
        # The template writes each figure with Jinja's tojson, which escapes "<" so no label can close the <script>.
        return self.page("dashboard.html", d=d, figures=d.figures, graph=graph, graphs=graphs,
                         percentiles=PERCENTILES)


def _plotly_js() -> Path:
    """plotly.js as the plotly wheel ships it: served from here, never from a CDN."""
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


def build_app(viewer: Viewer) -> Starlette:
    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return handler(request)
            except TraceStoreError as e:
                return viewer.error("Not found", str(e))
        return endpoint

    plotly = _plotly_js()
    routes = [
        Route("/", guarded(viewer.runs)),
        Route("/runs/{run}", guarded(viewer.run)),
        Route("/runs/{run}/graph", guarded(viewer.graph)),
        Route("/runs/{run}/spans/{span}", guarded(viewer.span)),
        Route("/runs/{run}/spans/{span}/{kind:str}", guarded(viewer.whole)),
        Route("/compare", guarded(viewer.compare)),
        Route("/dashboard", guarded(viewer.dashboard)),
        Route("/static/plotly.min.js", lambda _: FileResponse(plotly, media_type="text/javascript")),
        Mount("/static", StaticFiles(directory=_HERE / "static")),
    ]
    return Starlette(routes=routes)
