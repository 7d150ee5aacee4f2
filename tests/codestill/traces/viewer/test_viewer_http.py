"""The viewer's pages over HTTP (Starlette's TestClient) on a store filled by a real solve run."""

from __future__ import annotations

import difflib
import html
import itertools
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from codestill.cli._ui import compiled_graph
from codestill.traces import TraceStore
from codestill.traces.viewer import RunIndex, create_app
from tests.codestill.traces.viewer.conftest import API_KEY, SolvedStore


@pytest.fixture
def client(solved: SolvedStore, tmp_path: Path) -> TestClient:
    index = RunIndex(solved.path, tmp_path / "index.sqlite")
    index.refresh(force=True)
    # the search index holds prompts and code, never the key the run was made with
    assert API_KEY.encode() not in (tmp_path / "index.sqlite").read_bytes() + Path(f"{index.path}-wal").read_bytes()
    return TestClient(create_app(solved.path, index=index, graphs=compiled_graph))


def _run_id(solved: SolvedStore, task: str) -> str:
    with TraceStore(solved.path) as store:
        return next(r.id for r in store.list_runs(100) if r.task_id == task)


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr class="run-row" data-verdict="([^"]*)">', page)


def test_runs_list_filters_searches_and_sorts(client: TestClient, solved: SolvedStore) -> None:
    assert len(_rows(client.get("/").text)) == len(solved.trajectories)
    rejected = [t for t in solved.trajectories.values() if t.verdict == "rejected"]
    assert _rows(client.get("/?verdict=rejected").text) == ["rejected"] * len(rejected)
    # full text: a word of one task's accepted code, and words of a rejection reason
    task = solved.task_with("accepted", min_attempts=2)
    entry = solved.trajectories[task].task.entry_point
    found = client.get("/", params={"q": entry}).text
    assert _rows(found) == ["accepted"] and task in found
    words = " ".join(rejected[0].reason.split(":")[-1].split()[:3])
    assert len(_rows(client.get("/", params={"q": words}).text)) >= 1
    assert _rows(client.get("/", params={"q": "zzzz-no-such-word"}).text) == []
    # sorted by tokens, ascending
    page = client.get("/?sort=tokens&dir=asc").text
    tokens = [int(t) for t in re.findall(r'<td class="num tokens">(\d+)</td>', page)]
    assert tokens == sorted(tokens) and len(tokens) == len(solved.trajectories)
    # a bad filter value is said, not a crash
    assert "is not a date" in client.get("/?since=yesterday").text


def test_run_page_shows_attempts_with_diff_tests_critique_and_route(client: TestClient, solved: SolvedStore) -> None:
    task = solved.task_with("accepted", min_attempts=2)
    trajectory = solved.trajectories[task]
    page = client.get(f"/runs/{_run_id(solved, task)}").text
    # the first repair that changed the code (a dispute before it asks the tester again and keeps the code)
    attempts = trajectory.attempts
    n, (first, second) = next((i, pair) for i, pair in enumerate(itertools.pairwise(attempts), 1)
                              if pair[0].code != pair[1].code)
    assert f"diff against attempt {n}" in page
    added = [line[1:] for line in difflib.unified_diff(first.code.splitlines(), second.code.splitlines(), lineterm="")
             if line.startswith("+") and not line.startswith("+++")]
    shown = [html.unescape(t) for t in re.findall(r'<span class="d-add">\+(.*?)</span>', page)]
    assert added and shown == added
    assert first.critique is not None and first.critique.verdict == "repair"
    assert re.search(r'vd-repair">repair</span>.*?route <b class="route">code</b>', page, re.S)
    # per-test sandbox results of the failing first attempt
    assert first.result is not None
    failing = [t.name for t in first.result.tests if t.outcome != "passed"]
    assert failing and html.escape(failing[0]) in page
    # the LLM calls are listed, each loading lazily
    with TraceStore(solved.path) as store:
        calls = [s.id for s in store.tree(_run_id(solved, task)).walk() if s.kind == "llm"]
    assert re.findall(r'<details class="llm-call lazy" data-src="/runs/[^"]+/spans/([^"]+)"', page) == calls


def test_llm_call_shows_messages_and_long_text_links_to_the_whole(client: TestClient, solved: SolvedStore) -> None:
    rid = _run_id(solved, solved.task_with("accepted", min_attempts=2))
    with TraceStore(solved.path) as store:
        llm = [s for s in store.tree(rid).walk() if s.kind == "llm"]
    longest = max(llm, key=lambda s: max(len(m["content"]) for m in s.inputs["messages"][0]))
    fragment = client.get(f"/runs/{rid}/spans/{longest.id}").text
    assert 'class="msg role-system"' in fragment and f"{longest.prompt_tokens} prompt" in fragment
    assert API_KEY not in fragment
    found = re.search(r'<a class="whole" href="([^"]+)"', fragment)
    assert found is not None
    link = html.unescape(found.group(1))
    whole = client.get(link)
    contents = [m["content"] for m in longest.inputs["messages"][0]]
    assert whole.status_code == 200 and whole.text in contents and len(whole.text) > 4000
    raw = client.get(f"/runs/{rid}/spans/{longest.id}/raw?field=inputs")
    assert raw.json() == longest.inputs


def test_graph_page_draws_the_compiled_graph_with_path_loops_and_changes(client: TestClient, solved: SolvedStore) -> None:
    rid = _run_id(solved, solved.task_with("accepted", min_attempts=2))
    page = client.get(f"/runs/{rid}/graph").text
    nodes = set(re.findall(r'data-node="([^"]+)"', page))
    assert {"plan", "select", "branch:code", "branch:critique", "__start__", "__end__"} <= nodes
    assert re.search(r'data-node="branch:code">.*?code \u00d72', page, re.S)
    taken = re.search(r'class="edge taken[^"]*" d="[^"]*" marker-end="[^"]*" data-edge="branch:critique->branch:code"',
                      page)
    assert taken, "the repair loop's edge is drawn as taken"
    # a node whose run wrote nothing, and one that wrote
    assert re.search(r">review_plans</a></td>.*?changed nothing", page, re.S)
    assert "<code>plans</code>" in page


def test_compare_aligns_two_runs_and_finds_the_divergence(client: TestClient, solved: SolvedStore) -> None:
    two = _run_id(solved, solved.task_with("accepted", min_attempts=2))
    one = next(_run_id(solved, t) for t, tr in solved.trajectories.items()
               if tr.verdict == "accepted" and len(tr.attempts) == 1)
    page = client.get(f"/compare?a={one}&b={two}").text
    assert "first diverge at step" in page
    same = client.get(f"/compare?a={two}&b={two}").text
    assert "took the same path" in same
    assert "no run" in client.get(f"/compare?a={two}&b=ffffffff").text


def test_dashboard_funnel_and_percentiles(client: TestClient, solved: SolvedStore) -> None:
    page = client.get("/dashboard").text
    figure = re.search(r'id="fig-funnel">(.*?)</script>', page, re.S)
    assert figure is not None
    funnel = json.loads(html.unescape(figure.group(1)))
    counts = dict(zip(funnel["data"][0]["y"], funnel["data"][0]["x"], strict=True))
    assert counts["runs"] == len(solved.trajectories)
    assert counts["accepted"] == sum(t.verdict == "accepted" for t in solved.trajectories.values())
    assert "<td>critic</td>" in page and "<td>coder</td>" in page
    assert client.get("/static/plotly.min.js").status_code == 200


def test_bad_ids_are_a_page_that_says_so(client: TestClient, solved: SolvedStore) -> None:
    r = client.get("/runs/not-a-run")
    assert r.status_code == 404 and "is not a run id" in r.text
    rid = _run_id(solved, solved.task_with("rejected"))
    r = client.get(f"/runs/{rid}/spans/ffffffff-0000")
    assert r.status_code == 404 and "no span" in r.text
