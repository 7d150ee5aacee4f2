"""The runs list's query: filters, full-text search, sort and page, read from the runs index.

Every filter lives in the URL (``RunFilter.from_params`` / ``to_params``), so a filtered, sorted page
is a link that can be shared. Sorting and filtering use the index's per-column indexes; a page is
``LIMIT``/``OFFSET`` over them, which stays in the milliseconds at 100,000 runs.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

SORTS = ("start", "duration", "tokens", "llm_calls", "spans", "attempts", "graph", "task_id", "status",
         "verdict", "model")
STATUSES = ("ok", "error", "running", "unfinished")
PER_PAGE = (25, 50, 100, 200)
_TOKEN = re.compile(r"\w+", re.UNICODE)
_COLS = ("rid, id, graph, task_id, status, writer, start, duration, verdict, reason, reason_kind, model, "
         "tokens, llm_calls, spans, attempts")


class FilterError(ValueError):
    """A filter value in the URL that cannot be used; the page shows it instead of results."""


@dataclass(frozen=True)
class RunFilter:
    """One runs-list view: what to keep, how to order it, which page."""

    status: str = ""
    verdict: str = ""
    reason: str = ""
    graph: str = ""
    model: str = ""
    task: str = ""
    since: str = ""  # ISO date-time, UTC (what an <input type="datetime-local"> sends)
    until: str = ""
    q: str = ""
    sort: str = "start"
    desc: bool = True
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> RunFilter:
        known = {k: str(params[k]).strip() for k in ("status", "verdict", "reason", "graph", "model", "task",
                                                       "since", "until", "q") if params.get(k)}
        sort = params.get("sort", "start")
        try:
            page = max(1, int(params.get("page", "1")))
            per_page = int(params.get("per_page", "50"))
        except ValueError:
            raise FilterError("page and per_page must be whole numbers") from None
        return cls(**known, sort=sort if sort in SORTS else "start", desc=params.get("dir", "desc") != "asc",
                   page=page, per_page=per_page if per_page in PER_PAGE else 50)

    def to_params(self, **changes: Any) -> dict[str, str]:
        """Query parameters of this view with ``changes``; defaults left out, so links stay short."""
        values = asdict(replace(self, **changes))
        values["dir"] = "desc" if values.pop("desc") else "asc"
        defaults = {**asdict(RunFilter()), "dir": "desc"}
        defaults.pop("desc")
        return {k: str(v) for k, v in values.items() if v != defaults.get(k)}


@dataclass(frozen=True)
class RunRow:
    rid: int
    id: str
    graph: str
    task_id: str | None
    status: str
    start: datetime
    duration_s: float | None
    verdict: str | None
    reason: str | None
    reason_kind: str | None
    model: str | None
    tokens: int
    llm_calls: int
    spans: int
    attempts: int


@dataclass(frozen=True)
class Page:
    rows: list[RunRow]
    total: int
    page: int
    pages: int


def _when(text: str, name: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{name} {text!r} is not a date and time (e.g. 2025-06-01T12:00)") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def fts_query(text: str) -> str:
    """The user's words as an FTS5 query: every word must occur; the last one may be a prefix.
    Quoting each word keeps FTS5's operators (AND, NEAR, ``*``, ``:``) from being typed by accident."""
    words = _TOKEN.findall(text)
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _where(f: RunFilter, live: set[int]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    live_ids = ",".join(str(int(w)) for w in sorted(live)) or "NULL"
    if f.status == "running":
        clauses.append(f"status = 'running' AND writer IN ({live_ids})")
    elif f.status == "unfinished":
        clauses.append(f"status = 'running' AND writer NOT IN ({live_ids})")
    elif f.status:
        clauses.append("status = ?")
        args.append(f.status)
    for column, value in (("verdict", f.verdict), ("reason_kind", f.reason), ("graph", f.graph),
                          ("model", f.model), ("task_id", f.task)):
        if value == "-":  # the "(none)" choice
            clauses.append(f"{column} IS NULL")
        elif value:
            clauses.append(f"{column} = ?")
            args.append(value)
    if f.since:
        clauses.append("start >= ?")
        args.append(_when(f.since, "since"))
    if f.until:
        clauses.append("start <= ?")
        args.append(_when(f.until, "until"))
    if f.q and (match := fts_query(f.q)):
        clauses.append("rid IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
        args.append(match)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def query_runs(conn: sqlite3.Connection, f: RunFilter, live: set[int]) -> Page:
    """One page of runs matching ``f``, and how many match in all."""
    where, args = _where(f, live)
    total = int(conn.execute(f"SELECT count(*) FROM runs{where}", args).fetchone()[0])
    pages = max(1, -(-total // f.per_page))
    page = min(f.page, pages)
    order = "DESC" if f.desc else "ASC"
    # The page's ids first, then their rows: sorting tens of thousands of search hits moves only
    # (sort key, id) pairs through the sorter, not every column (half the time at 100,000 runs).
    rids = [r for (r,) in conn.execute(f"SELECT rid FROM runs{where} ORDER BY {f.sort} {order}, rid {order} "
                                       "LIMIT ? OFFSET ?", [*args, f.per_page, (page - 1) * f.per_page])]
    found = {r[0]: r for r in conn.execute(f"SELECT {_COLS} FROM runs WHERE rid IN ({','.join('?' * len(rids))})",
                                           rids)}
    rows = [found[r] for r in rids if r in found]
    out = []
    for (rid, sid, graph, task, status, writer, start, duration, verdict, reason, kind, model, tokens, calls,
         spans, attempts) in rows:
        shown = "unfinished" if status == "running" and writer not in live else status
        out.append(RunRow(rid, sid, graph, task, shown, datetime.fromtimestamp(start, UTC), duration, verdict,
                          reason, kind, model, tokens, calls, spans, attempts))
    return Page(out, total, page, pages)


def facets(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """The values each filter can take, for its drop-down (each one a walk of a small index)."""
    out: dict[str, list[str]] = {"status": list(STATUSES)}
    for key, column in (("verdict", "verdict"), ("reason", "reason_kind"), ("graph", "graph"),
                        ("model", "model")):
        out[key] = [v for (v,) in conn.execute(f"SELECT DISTINCT {column} FROM runs WHERE {column} IS NOT NULL "
                                               f"ORDER BY {column} LIMIT 200")]
    return out
