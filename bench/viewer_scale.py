"""Trace viewer at scale: a generated trace store of 100,000 solve runs (about 2 million spans), and the
time the viewer takes, through real HTTP, to answer its runs list, a filtered full-text search, and
one run's page.

The store is written straight into the trace store's SQLite layout (``codestill.traces._schema``),
with payloads encoded by the store's own codec: per run a root whose final state holds a
``Trajectory`` (task, plans, attempts with code and sandbox results, critiques), and 19 spans
shaped like the solve graph's (nodes, LLM calls with system + user prompts and tool-call replies,
a sandbox run, routing functions). Every 500th run carries a 2 MB prompt. Run texts vary per run,
so the full-text index has real work. The viewer's index is then built once (timed, reported),
the server started with uvicorn on a free port, and each page fetched ``--repeat`` times; the
median counts.

    .venv/bin/python bench/viewer_scale.py [--runs 100000] [--repeat 7] [--keep DIR]

Target on the 2-core machine: each page under 300 ms. Last line:

    viewer: runs=<int> list_ms=<float> search_ms=<float> run_page_ms=<float>
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

from _progress import progress_bar
from rich.console import Console
from rich.table import Table

from codestill.traces._codec import Codec
from codestill.traces._schema import open_writer

console = Console(stderr=True)
WORDS = ["list", "tuple", "dict", "string", "sort", "merge", "count", "unique", "prime", "sum", "max", "min", "reverse", "parse", "binary", "tree", "graph", "path", "matrix", "window", "interval", "stack", "queue", "heap", "digit", "vowel", "palindrome", "anagram", "fibonacci", "factorial", "bracket", "substring", "prefix", "suffix", "rotate", "flatten", "chunk", "zip", "pair", "even", "odd", "square", "cube"]
REASONS = ("repeated_failure: still failing after 2 repairs (assert f(3) == 6)", "budget_exceeded: 41000 tokens",
           "model_failure: no plan could be read from the planner", "weak_tests: the tests cover one case",
           "reject: the instruction asks for network access")
NODES = ("plan", "draft", "decompose", "code", "test", "critique")
_COLS = 19


def _code(rng: random.Random, name: str) -> str:
    body = "\n".join(f"    {rng.choice(WORDS)}_{i} = {rng.choice(WORDS)}(x, {i})" for i in range(rng.randint(3, 12)))
    return f"def {name}(x):\n{body}\n    return x\n"


def _messages(rng: random.Random, instruction: str, huge: bool) -> dict[str, Any]:
    system = "You are the codestill coder. Write correct, clear Python. " * 12
    user = f"## Task\n{instruction}\n\n## Plan\n" + "\n".join(f"{i}. {rng.choice(WORDS)} the {rng.choice(WORDS)}"
                                                              for i in range(1, 6))
    if huge:
        user += "\n" + ("x = [" + ", ".join(str(i) for i in range(400)) + "]\n") * 1300  # ~2 MB
    return {"messages": [[{"role": "system", "content": system}, {"role": "human", "content": user}]]}


def _reply(code: str) -> dict[str, Any]:
    return {"generations": [{"role": "ai", "content": "", "tool_calls": [
        {"name": "CoderAnswer", "args": {"code": code, "explanation": "direct"}, "id": "call_1", "type": "tool_call"}],
        "response_metadata": {"finish_reason": "tool_calls", "model_name": "codestill-sim"}}]}


def _run_rows(rng: random.Random, codec: Codec, n: int, t0: float) -> list[tuple[Any, ...]]:
    """One solve run's 20 span rows, in the store's column order."""
    rid = str(uuid.uuid4())
    name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"
    task_id = f"mbpp/{n % 1000 + 1}"
    instruction = f"Write a function {name} that " + " ".join(rng.choice(WORDS) for _ in range(14)) + "."
    accepted = rng.random() < 0.7
    attempts = []
    for r in range(rng.randint(1, 3)):
        passed = (accepted and r == 0) or rng.random() < 0.3
        attempts.append({"round": r, "plan_index": 0, "code": _code(rng, name),
                         "result": {"status": "passed" if passed else "failed",
                                    "tests": [{"name": f"test_{i}", "outcome": "passed" if passed or i else "failed",
                                               "message": "" if passed else f"assert {name}({i}) == {i * 2}"}
                                              for i in range(5)]},
                         "critique": {"verdict": "accept" if passed else "repair", "issues": [] if passed else
                                      [f"{name}({r}) returned None"], "suggestion": ""}})
    reason = "the tests pass and the critic accepts" if accepted else rng.choice(REASONS)
    verdict = "accepted" if accepted else "rejected"
    task = {"id": task_id, "instruction": instruction, "entry_point": name, "source": "mbpp"}
    trajectory = {"id": f"t-{rid[:16]}", "task": task, "plans": [{"steps": ["a", "b"], "kind": "forward"}],
                  "attempts": attempts, "verdict": verdict, "reason": reason,
                  "final_code": attempts[-1]["code"] if accepted else None, "model": "openai:codestill-sim",
                  "memory_hits": [], "reused_modules": [], "added_modules": []}
    start = t0 + n * 6.0 + rng.random()
    clock = [start]
    rows: list[tuple[Any, ...]] = []
    tokens = 0

    def span(kind: str, sname: str, node: str | None, parent: str | None, dur: float, inputs: Any = None,
             outputs: Any = None, model: str | None = None, pt: int | None = None, ct: int | None = None,
             error: str | None = None, status: str = "ok") -> str:
        sid = rid if parent is None else str(uuid.uuid4())
        s = clock[0]
        clock[0] += dur
        rows.append((sid, rid, parent, 1, kind, sname, node, task_id, status, s, s + dur, model, pt, ct, error,
                     None, codec.encode(inputs), codec.encode(outputs),
                     codec.encode({"metadata": {"langgraph_step": len(rows)}})))
        return sid

    huge = n % 500 == 0
    span("graph", "solve", None, None, 0.0)
    for node in ("plan", "review_plans", "branch"):
        p = span("node", node, node, rid, 0.001, {"task": task}, {})
        if node == "plan":
            pt, ct = rng.randint(600, 900), rng.randint(60, 120)
            tokens += pt + ct
            span("llm", "ChatOpenAI", node, p, rng.uniform(0.05, 0.4), _messages(rng, instruction, huge),
                 _reply("1. plan"), "codestill-sim", pt, ct)
        if node == "branch":
            sub = span("chain", "LangGraph", node, p, 0.001)
            for inner in NODES[1:]:
                q = span("node", inner, inner, sub, 0.001, {"task": task}, {"usage": {"calls": 1}})
                pt, ct = rng.randint(700, 2500), rng.randint(30, 500)
                tokens += pt + ct
                span("llm", "ChatOpenAI", inner, q, rng.uniform(0.05, 0.6), _messages(rng, instruction, False),
                     _reply(attempts[-1]["code"]), "codestill-sim", pt, ct)
                if inner == "test":
                    span("chain", "sandbox", inner, q, rng.uniform(0.05, 0.3),
                         {"program": attempts[-1]["code"], "tests": {"code": f"assert {name}(1) == 2"}},
                         attempts[-1]["result"])
    span("node", "select", "select", rid, 0.001, {"task": task}, {"verdict": verdict, "reason": reason})
    span("node", "finish", "finish", rid, 0.001, {"task": task}, {"trajectory": trajectory})
    end = clock[0]
    root = list(rows[0])
    root[10], root[15] = end, verdict
    root[16] = codec.encode({"task": task})
    root[17] = codec.encode({"task": task, "verdict": verdict, "reason": reason, "trajectory": trajectory})
    rows[0] = tuple(root)
    return rows


def generate(path: Path, runs: int, seed: int) -> int:
    conn = open_writer(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("INSERT INTO writers (pid, host, started, closed) VALUES (1, 'bench', ?, ?)", (time.time(),) * 2)
    codec, rng = Codec(), random.Random(seed)
    t0 = time.time() - runs * 6.0
    sql = f"INSERT INTO spans VALUES ({','.join('?' * _COLS)})"
    spans = 0
    with progress_bar(console, "runs") as bar:
        task = bar.add_task("generate", total=runs)
        for lo in range(0, runs, 2000):
            batch = [row for n in range(lo, min(runs, lo + 2000)) for row in _run_rows(rng, codec, n, t0)]
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            spans += len(batch)
            bar.update(task, completed=min(runs, lo + 2000))
    conn.close()
    return spans


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(store: Path, repeat: int) -> dict[str, Any]:
    import httpx
    import uvicorn

    from codestill.traces.viewer import RunIndex, create_app

    index = RunIndex(store)
    start = time.perf_counter()
    with progress_bar(console, "runs") as bar:
        task = bar.add_task("index", total=index.pending())
        index.refresh(lambda done, total: bar.update(task, completed=done), force=True)
    build_s = time.perf_counter() - start
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, index=index), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        run_id = index.conn.execute("SELECT id FROM runs WHERE attempts >= 2 ORDER BY rid DESC LIMIT 1 OFFSET 777"
                                    ).fetchone()[0]
        pages = {"list": "/?page=37", "search": "/?verdict=rejected&reason=repeated_failure&q=palindrome",
                 "run_page": f"/runs/{run_id}"}
        out: dict[str, Any] = {"build_s": build_s, "runs": index.conn.execute("SELECT count(*) FROM runs").fetchone()[0]}
        for key, url in pages.items():
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                r = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                out[key + "_bytes"] = len(r.content)
            out[key] = statistics.median(times)
            out[key + "_max"] = max(times)
    server.should_exit = True
    thread.join(10)
    index.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="Write the store here and keep it (re-used when present).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="codestill-viewer-bench-") as tmp:
        store = (args.keep or Path(tmp)) / "traces.sqlite"
        start = time.perf_counter()
        if not store.exists():
            store.parent.mkdir(parents=True, exist_ok=True)
            spans = generate(store, args.runs, args.seed)
        else:
            from codestill.traces._schema import open_reader
            with closing(open_reader(store)) as conn:
                spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        gen_s = time.perf_counter() - start
        made = f"store written in {gen_s:.1f} s" if gen_s > 1 or not args.keep else f"store re-used from {store}"
        r = measure(store, args.repeat)
        size_mb = store.stat().st_size / 1e6
    table = Table(title=f"viewer over {r['runs']} runs, {spans} spans ({size_mb:.0f} MB store)")
    for col in ("page", "median ms", "max ms", "bytes"):
        table.add_column(col, justify="right")
    for key in ("list", "search", "run_page"):
        table.add_row(key, f"{r[key]:.1f}", f"{r[key + '_max']:.1f}", str(r[key + "_bytes"]))
    console.print(table)
    console.print(f"{made}; index brought up to date in {r['build_s']:.1f} s")
    print(f"viewer: runs={r['runs']} list_ms={r['list']:.1f} search_ms={r['search']:.1f} "
          f"run_page_ms={r['run_page']:.1f}")


if __name__ == "__main__":
    main()
