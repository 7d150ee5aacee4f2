"""Trace cost per span: what a span costs the graph's own thread, and what the writer thread spends.

Side by side in one run, per span (its start callback + its end callback), for N spans shaped like
the solve graph's (a LangGraph node with a small state, and a chat call with a 2-message prompt and
an AIMessage reply with usage):

* ``noop``: a ``BaseCallbackHandler`` whose callbacks do nothing (the floor: LangChain's call).
* ``basetracer``: LangChain's ``BaseTracer`` machinery with a no-op ``_persist_run`` (pydantic
  ``Run`` per span, prompts serialised on the caller's thread): what a stock tracer costs.
* ``sqlite``: ``SqliteTracer``, callbacks only (its writer thread runs meanwhile).

Then the writer: the wall time from the first enqueued span until ``flush()`` returns, per span.

    .venv/bin/python bench/trace_span_cost.py [--n 50000]

The last line printed is machine-readable::

    traces: hot_us_per_span=<float> basetracer_us_per_span=<float> writer_us_per_span=<float>
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.base import BaseTracer
from rich.console import Console
from rich.table import Table

from codestill.traces import SqliteTracer

PROMPT = [[SystemMessage("You are the codestill coder. " * 20), HumanMessage("Write add(a, b).")]]
REPLY = LLMResult(generations=[[ChatGeneration(message=AIMessage(
    "def add(a, b):\n    return a + b\n" * 4, response_metadata={"model_name": "sim"},
    usage_metadata={"input_tokens": 120, "output_tokens": 40, "total_tokens": 160}))]])
STATE = {"task": "Write add(a, b).", "plan": "1. add", "modules": ["def add(a, b): ..."], "tries": 1}
META = {"task_id": "mbpp/1", "langgraph_node": "coder", "langgraph_step": 2, "ls_provider": "openai",
        "ls_model_name": "sim"}


class Noop(BaseCallbackHandler):
    run_inline = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        pass


class StockTracer(BaseTracer):
    run_inline = True

    def __init__(self) -> None:
        super().__init__(_schema_format="original+chat")

    def _persist_run(self, run: Any) -> None:
        pass


def spans(handler: Any, n: int) -> float:
    """Seconds per span: alternately a node span and an LLM span, each started and ended."""
    make_id = getattr(uuid, "uuid7", uuid.uuid4)  # uuid7: Python 3.14 on
    ids = [make_id() for _ in range(n)]
    start = time.perf_counter()
    for i, rid in enumerate(ids):
        if i % 2:
            handler.on_chat_model_start({"name": "ChatOpenAI"}, PROMPT, run_id=rid, parent_run_id=None,
                                        tags=[], metadata=META, invocation_params={"model": "sim"})
            handler.on_llm_end(REPLY, run_id=rid)
        else:
            handler.on_chain_start(None, STATE, run_id=rid, parent_run_id=None, tags=["graph:step:2"],
                                   metadata=META, name="coder")
            handler.on_chain_end({"plan": "2. test"}, run_id=rid)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description="Per-span cost of the trace store.")
    parser.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args()
    console = Console()
    noop = spans(Noop(), args.n)
    stock = spans(StockTracer(), args.n)
    with tempfile.TemporaryDirectory() as tmp, SqliteTracer(Path(tmp) / "traces.sqlite") as tracer:
        began = time.perf_counter()
        hot = spans(tracer, args.n)
        tracer.flush(timeout=600)
        writer = (time.perf_counter() - began) / args.n
        written = tracer.stats.written
    if written != args.n:
        raise SystemExit(f"the writer stored {written} of {args.n} spans")
    table = Table(title=f"{args.n} spans (start + end callbacks), half node spans, half chat calls")
    table.add_column("handler")
    table.add_column("us / span", justify="right")
    table.add_column("vs noop", justify="right")
    for name, secs in (("noop", noop), ("basetracer", stock), ("sqlite (caller's thread)", hot)):
        table.add_row(name, f"{secs * 1e6:.2f}", f"+{(secs - noop) * 1e6:.2f}")
    table.add_row("sqlite writer thread, until flushed", f"{writer * 1e6:.2f}", "")
    console.print(table)
    print(f"traces: hot_us_per_span={hot * 1e6:.2f} basetracer_us_per_span={stock * 1e6:.2f} "
          f"writer_us_per_span={writer * 1e6:.2f}", flush=True)


if __name__ == "__main__":
    main()
