"""The batch dashboard: yield funnel per stage, rejection reasons, latency and token percentiles per
agent, accepted samples over time; read from the runs index, drawn by plotly.js (served locally).

Figures are plain plotly JSON (``data`` + ``layout``) built here; the page hands them to
``Plotly.newPlot``. Percentiles are read off the index's (agent, value) indexes with one
``LIMIT 1 OFFSET k`` each, so they stay cheap however many calls a batch made.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The solve graph's nodes that call a model, by the agent role that answers them; other nodes (other
# graphs) are shown under their own name.
AGENT_OF_NODE = {"plan": "planner", "backward": "planner", "draft": "coder", "code": "coder", "explain": "coder",
                 "decompose": "decomposer", "test": "tester", "critique": "critic"}
PERCENTILES = (50, 90, 99)
_BUCKETS = 60


@dataclass
class AgentStats:
    agent: str
    nodes: list[str]
    calls: int
    latency_ms: dict[int, float]
    tokens: dict[int, float]


@dataclass
class Dashboard:
    runs: int
    funnel: list[tuple[str, int]]
    reasons: list[tuple[str, int]]
    agents: list[AgentStats]
    figures: dict[str, dict[str, Any]]


def _percentile(conn: sqlite3.Connection, column: str, nodes: list[str], n: int, p: int) -> float:
    marks = ",".join("?" * len(nodes))
    k = min(n - 1, max(0, round(p / 100 * (n - 1))))
    if len(nodes) == 1:  # walks the (agent, value) index
        sql = f"SELECT {column} FROM llm WHERE agent = ? AND {column} IS NOT NULL ORDER BY {column} LIMIT 1 OFFSET ?"
    else:
        sql = (f"SELECT {column} FROM llm WHERE agent IN ({marks}) AND {column} IS NOT NULL "
               f"ORDER BY {column} LIMIT 1 OFFSET ?")
    row = conn.execute(sql, [*nodes, k]).fetchone()
    return float(row[0]) if row else 0.0


def _agents(conn: sqlite3.Connection) -> list[AgentStats]:
    by_agent: dict[str, list[tuple[str, int]]] = {}
    for node, n in conn.execute("SELECT agent, count(*) FROM llm GROUP BY agent"):
        by_agent.setdefault(AGENT_OF_NODE.get(node) or node, []).append((node, n))
    out = []
    for agent, parts in sorted(by_agent.items()):
        nodes = [node for node, _ in parts]
        n = sum(c for _, c in parts)
        out.append(AgentStats(agent, nodes, n,
                              {p: 1000 * _percentile(conn, "duration", nodes, n, p) for p in PERCENTILES},
                              {p: _percentile(conn, "tokens", nodes, n, p) for p in PERCENTILES}))
    return out


def _bar(x: list[Any], y: list[Any], title: str, horizontal: bool = False, **trace: Any) -> dict[str, Any]:
    data = {"type": "bar", "x": y, "y": x, "orientation": "h"} if horizontal else {"type": "bar", "x": x, "y": y}
    layout: dict[str, Any] = {"title": {"text": title}, "margin": {"l": 160 if horizontal else 50, "r": 20,
                                                                     "t": 40, "b": 40}, "height": 320}
    if horizontal:
        layout["yaxis"] = {"autorange": "reversed"}
    return {"data": [{**data, **trace}], "layout": layout}


def dashboard(conn: sqlite3.Connection, graph: str = "") -> Dashboard:
    where, args = (" WHERE graph = ?", [graph]) if graph else ("", [])
    total, planned, coded, passed, accepted = conn.execute(
        "SELECT count(*), coalesce(sum(plans > 0), 0), coalesce(sum(attempts > 0), 0), coalesce(sum(passed), 0), "
        f"coalesce(sum(verdict = 'accepted'), 0) FROM runs{where}", args).fetchone()
    funnel = [("runs", total), ("planned", planned), ("coded", coded), ("tests passed", passed),
              ("accepted", accepted)]
    and_graph = " AND graph = ?" if graph else ""
    reasons = [(str(k), int(n)) for k, n in conn.execute(
        "SELECT coalesce(reason_kind, coalesce(verdict, status)), count(*) FROM runs "
        f"WHERE coalesce(verdict, '') != 'accepted'{and_graph} GROUP BY 1 ORDER BY 2 DESC LIMIT 20", args)]
    agents = _agents(conn)
    figures = {
        "funnel": {"data": [{"type": "funnel", "y": [s for s, _ in funnel], "x": [n for _, n in funnel],
                             "textinfo": "value+percent initial"}],
                   "layout": {"title": {"text": "Yield per stage"}, "height": 320,
                              "margin": {"l": 110, "r": 20, "t": 40, "b": 30}}},
        "reasons": _bar([r for r, _ in reasons], [n for _, n in reasons], "Runs not accepted, by reason",
                        horizontal=True),
        "latency": {"data": [{"type": "bar", "name": f"p{p}", "x": [a.agent for a in agents],
                              "y": [round(a.latency_ms[p], 1) for a in agents]} for p in PERCENTILES],
                    "layout": {"title": {"text": "LLM latency per agent (ms)"}, "barmode": "group", "height": 320,
                               "margin": {"l": 50, "r": 20, "t": 40, "b": 40}}},
        "tokens": {"data": [{"type": "bar", "name": f"p{p}", "x": [a.agent for a in agents],
                             "y": [a.tokens[p] for a in agents]} for p in PERCENTILES],
                   "layout": {"title": {"text": "Tokens per LLM call, per agent"}, "barmode": "group",
                              "height": 320, "margin": {"l": 50, "r": 20, "t": 40, "b": 40}}},
        "accepted": _accepted_over_time(conn, graph),
    }
    return Dashboard(total, funnel, reasons, agents, figures)


def _accepted_over_time(conn: sqlite3.Connection, graph: str) -> dict[str, Any]:
    and_graph, args = (" AND graph = ?", [graph]) if graph else ("", [])
    lo, hi = conn.execute(f"SELECT min(end), max(end) FROM runs WHERE verdict = 'accepted'{and_graph}",
                          args).fetchone()
    xs: list[str] = []
    ys: list[int] = []
    if lo is not None:
        width = max((hi - lo) / _BUCKETS, 1e-3)
        counts = dict(conn.execute(
            f"SELECT CAST((end - ?) / ? AS INTEGER) AS b, count(*) FROM runs WHERE verdict = 'accepted'{and_graph} "
            "GROUP BY b", [lo, width, *args]))
        total = 0
        for b in range(_BUCKETS + 1):
            total += counts.get(b, 0)
            ys.append(total)
            xs.append(_iso(lo + b * width))
    return {"data": [{"type": "scatter", "mode": "lines", "x": xs, "y": ys, "line": {"shape": "hv"}}],
            "layout": {"title": {"text": "Accepted samples over time (cumulative)"}, "height": 320,
                       "xaxis": {"type": "date"}, "margin": {"l": 50, "r": 20, "t": 40, "b": 40}}}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
