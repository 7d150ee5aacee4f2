"""The web viewer over a trace store (`codestill ui`): runs list with filters and full-text search,
run pages (span tree, waterfall, LLM calls, attempts with diffs, memory hits), the compiled graph with
the path a run took, run comparison, and a batch dashboard.

``RunIndex(store)`` is the sidecar index the runs list reads (``refresh()`` brings it up to date);
``create_app(store, index=..., graphs=...)`` is the Starlette app; ``graphs`` maps a root span's
name (``solve``) to its compiled graph's ``get_graph(xray=1)``, which only the caller may import.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette

from codestill.traces.viewer._app import GraphSource, Viewer, build_app
from codestill.traces.viewer._index import RunIndex, default_index_path


def create_app(store: Path, *, index: RunIndex | None = None, graphs: GraphSource | None = None) -> Starlette:
    """The viewer's app over ``store``; builds (or brings up to date) the index when none is given."""
    if index is None:
        index = RunIndex(store)
        index.refresh(force=True)
    return build_app(Viewer(store, index, graphs))


def latest_store(runs_dir: Path, fallback: Path) -> Path:
    """The newest batch run's ``traces.sqlite`` under ``runs_dir``, else ``fallback`` (the sessions' store)."""
    found = [p for p in runs_dir.glob("*/traces.sqlite") if p.is_file()] if runs_dir.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else fallback


__all__ = ["GraphSource", "RunIndex", "create_app", "default_index_path", "latest_store"]
