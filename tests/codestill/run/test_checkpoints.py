"""The solve graph's checkpointer on a real SQLite file: pause, reopen, resume, list, delete, and the
file is the one LangGraph's own async saver reads."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from codestill.run._checkpoints import open_checkpointer
from codestill.schemas import Plan


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    plan: Plan


def _graph(saver: BaseCheckpointSaver) -> Any:
    def first(state: State) -> dict:
        return {"log": ["first"], "plan": Plan(kind="forward", steps=("Add a and b.",))}

    def ask(state: State) -> dict:
        return {"log": [f"answer {interrupt('go on?')}"]}

    g = StateGraph(State)
    g.add_node("first", first)
    g.add_node("ask", ask)
    g.add_edge(START, "first")
    g.add_edge("first", "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=saver)


def test_a_paused_thread_resumes_from_a_reopened_file(tmp_path: Path):
    path = tmp_path / "sessions.sqlite"
    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}

    async def pause() -> None:
        async with open_checkpointer(path) as saver:
            out = await _graph(saver).ainvoke({"log": []}, config, durability="sync")
            assert out["__interrupt__"][0].value == "go on?"

    async def resume() -> tuple[dict, int]:
        async with open_checkpointer(path) as saver:  # a new process: nothing but the file
            graph = _graph(saver)
            paused = await graph.aget_state(config)
            assert paused.next == ("ask",) and paused.values["log"] == ["first"]
            out = await graph.ainvoke(Command(resume="yes"), config, durability="sync")
            history = [c async for c in saver.alist(config)]
            return out, len(history)

    asyncio.run(pause())
    out, steps = asyncio.run(resume())
    assert out["log"] == ["first", "answer yes"]
    assert out["plan"] == Plan(kind="forward", steps=("Add a and b.",))  # a record comes back as itself
    assert steps >= 3


def test_langgraphs_async_saver_reads_the_same_file_and_deletes_threads(tmp_path: Path):
    path = tmp_path / "sessions.sqlite"
    config: RunnableConfig = {"configurable": {"thread_id": "t2"}}

    async def go() -> None:
        async with open_checkpointer(path) as saver:
            await _graph(saver).ainvoke({"log": []}, config, durability="sync")
        async with AsyncSqliteSaver.from_conn_string(str(path)) as other:
            state = await _graph(other).aget_state(config)
            assert state.values["log"] == ["first"] and state.next == ("ask",)
        async with open_checkpointer(path) as saver:
            await saver.adelete_thread("t2")
            assert await saver.aget_tuple(config) is None
            assert [c async for c in saver.alist(config)] == []

    asyncio.run(go())
