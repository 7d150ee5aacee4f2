"""The runs index and its queries, and payload rendering, on stores written by the real tracer."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from codestill.traces.viewer import RunIndex, latest_store
from codestill.traces.viewer._payload import SHOW_CHARS, SHOW_ITEMS, PayloadView
from codestill.traces.viewer._query import RunFilter, fts_query, query_runs
from tests.codestill.traces.conftest import run_graphs
from tests.codestill.traces.graphs import build


def test_index_is_incremental_and_tied_to_its_store(tmp_path: Path) -> None:
    store = tmp_path / "traces.sqlite"
    run_graphs(store, ["a", "b", "c"])
    index = RunIndex(store)
    assert index.path == tmp_path / "traces.viewer.sqlite"
    assert index.refresh(force=True) == 3
    run_graphs(store, ["d", "e"])
    assert index.pending() == 2 and index.refresh(force=True) == 2
    assert index.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 5
    index.close()
    # another store at the same path: the index starts over instead of mixing the two
    store.unlink()
    Path(f"{store}-wal").unlink(missing_ok=True)
    run_graphs(store, ["x"])
    again = RunIndex(store)
    again.refresh(force=True)
    assert [r[0] for r in again.conn.execute("SELECT task_id FROM runs")] == ["x"]
    again.close()


def test_pages_time_range_status_and_search(tmp_path: Path) -> None:
    store = tmp_path / "traces.sqlite"
    run_graphs(store, [f"t{i}" for i in range(30)])
    run_graphs(store, ["broken"], graph=build(fail_in_tester="the sandbox fell over"))
    index = RunIndex(store)
    index.refresh(force=True)
    live = index.live_writers()
    first = query_runs(index.conn, RunFilter(per_page=25), live)
    second = query_runs(index.conn, RunFilter(per_page=25, page=2), live)
    assert (first.total, first.pages, len(first.rows), len(second.rows)) == (31, 2, 25, 6)
    assert not {r.id for r in first.rows} & {r.id for r in second.rows}
    starts = [r.start for r in first.rows + second.rows]
    assert starts == sorted(starts, reverse=True)
    # a page past the end shows the last page
    assert query_runs(index.conn, RunFilter(per_page=25, page=9), live).page == 2
    # time range (UTC), status, and full text over the error
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert query_runs(index.conn, RunFilter(since=future), live).total == 0
    assert query_runs(index.conn, RunFilter(until=future), live).total == 31
    errors = query_runs(index.conn, RunFilter(status="error"), live)
    assert [r.task_id for r in errors.rows] == ["broken"]
    assert [r.task_id for r in query_runs(index.conn, RunFilter(q="fell over"), live).rows] == ["broken"]
    index.close()


def test_fts_query_quotes_words_so_operators_cannot_be_typed() -> None:
    assert fts_query('unique_sublists NEAR "x" *') == '"unique_sublists" "NEAR" "x"*'
    assert fts_query("  ") == ""


def test_long_values_show_their_head_and_a_link_to_the_whole() -> None:
    view = PayloadView("/runs/r/spans/s", "inputs")
    long = "x" * (SHOW_CHARS + 10)
    html = view.render({"messages": [[{"content": long}]], "many": list(range(SHOW_ITEMS + 5))})
    assert html.count("x" * SHOW_CHARS) == 1 and "x" * (SHOW_CHARS + 1) not in html
    assert "field=inputs&amp;path=messages.0.0.content" in html and f"of {len(long)} characters" in html
    assert "5 more" in html and "/raw?field=inputs&amp;path=many" in html
    cut = view.render({"truncated_json_bytes": 9 << 20, "head": "{\"a\": 1"})
    assert "trace writer kept the first" in cut and "9.0 MB" in cut


def test_latest_store_is_the_newest_run_directory(tmp_path: Path) -> None:
    fallback = tmp_path / ".codestill" / "traces.sqlite"
    assert latest_store(tmp_path / "runs", fallback) == fallback
    older, newer = tmp_path / "runs" / "a" / "traces.sqlite", tmp_path / "runs" / "b" / "traces.sqlite"
    for path, mtime in ((newer, 2_000_000), (older, 1_000_000)):  # the newer one written first
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    assert latest_store(tmp_path / "runs", fallback) == newer
