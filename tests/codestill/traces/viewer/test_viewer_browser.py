"""The viewer in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``, installed
by ``make setup``; Playwright never downloads one) against the viewer served by uvicorn over a store
from a real solve run against ``codestill sim``.

The walk a person takes: open the runs list, filter to rejected runs, open one, expand an LLM call
and read its messages, then open an accepted run with two attempts and see the code diff between
them. Screenshots of each step are kept in ``test-artifacts/viewer/`` at the repository root
(ignored by git), so a reviewer can look at what the browser showed.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codestill.cli._ui import compiled_graph
from codestill.traces.viewer import RunIndex, create_app
from tests.codestill.traces.viewer.conftest import SolvedStore

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[4] / "test-artifacts" / "viewer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def viewer_url(solved: SolvedStore, tmp_path: Path) -> Iterator[str]:
    import uvicorn

    index = RunIndex(solved.path, tmp_path / "index.sqlite")
    index.refresh(force=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(solved.path, index=index, graphs=compiled_graph),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the viewer did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    index.close()


@pytest.fixture
def page(viewer_url: str) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed: `make setup` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_filter_rejected_open_one_expand_llm_call_and_see_the_diff(page, viewer_url: str,
                                                                    solved: SolvedStore) -> None:
    from playwright.sync_api import expect

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    page.goto(viewer_url + "/")
    expect(page.locator("tr.run-row")).to_have_count(len(solved.trajectories))
    page.screenshot(path=ARTIFACTS / "1-runs.png", full_page=True)

    # filter to rejected runs with the form, as a person would
    page.select_option("select[name=verdict]", "rejected")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"verdict=rejected"))
    rows = page.locator("tr.run-row")
    rejected = sum(t.verdict == "rejected" for t in solved.trajectories.values())
    expect(rows).to_have_count(rejected)
    for i in range(rejected):
        expect(rows.nth(i)).to_have_attribute("data-verdict", "rejected")
    page.screenshot(path=ARTIFACTS / "2-rejected.png", full_page=True)

    # open one, and expand an LLM call: its messages load lazily
    rows.first.locator("a.run-link").click()
    expect(page.locator("h1")).to_contain_text("solve")
    expect(page.locator(".vd-rejected").first).to_be_visible()
    call = page.locator("details.llm-call").first
    call.locator("summary").click()
    expect(call.locator(".msg.role-system")).to_be_visible()
    expect(call.locator(".msg.role-human, .msg.role-user").first).to_contain_text("Task")
    call.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "3-rejected-run-llm-call.png", full_page=True)

    # a span picked in the tree opens in the detail pane and its id goes into the URL (a shareable link)
    page.locator(".span-tree a.span-link.k-llm").first.click()
    expect(page.locator("#detail .span-detail")).to_be_visible()
    assert "span=" in page.url

    # an accepted run with two attempts: the diff between them
    page.goto(viewer_url + "/?verdict=accepted&sort=attempts&dir=desc")
    page.locator("tr.run-row a.run-link").first.click()
    # (the first diff may be "(the same code)": the tester was asked again before the coder repaired)
    diff = page.locator("pre.diff:has(.d-add)").first
    expect(diff).to_be_visible()
    expect(diff.locator(".d-add").first).to_be_visible()
    expect(diff.locator(".d-del").first).to_be_visible()
    diff.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "4-attempt-diff.png", full_page=True)

    # the graph with the path taken, and the dashboard's charts drawn by plotly.js
    page.goto(page.url.split("?")[0] + "/graph")
    expect(page.locator("svg.graph g.node.visited").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "5-graph.png", full_page=True)
    page.goto(viewer_url + "/dashboard")
    expect(page.locator("#chart-funnel .main-svg").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "6-dashboard.png", full_page=True)
    assert sorted(p.name for p in ARTIFACTS.iterdir()) == [
        "1-runs.png", "2-rejected.png", "3-rejected-run-llm-call.png", "4-attempt-diff.png", "5-graph.png",
        "6-dashboard.png"]
