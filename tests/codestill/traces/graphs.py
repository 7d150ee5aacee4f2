"""A small agent-shaped LangGraph for the trace-store tests, importable by crash-test subprocesses too.

planner (a chat model call) -> recall (a retriever, then a RunnableLambda) -> tester (a tool named
like the sandbox's, "sandbox.run"). Per graph run that is 8 spans: the graph, 3 nodes, and the
LLM, retriever, lambda and tool inside them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Required, TypedDict

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

SPANS_PER_RUN = 8
PROMPT_TOKENS, COMPLETION_TOKENS = 42, 17
SYSTEM = "You are the codestill planner. Write a short plan."


class State(TypedDict, total=False):
    task: Required[str]
    plan: str
    modules: list[str]
    result: str
    verdict: str
    blob: Any


class ModuleMemory(BaseRetriever):
    """Stands in for the Chroma module memory: two fixed verified modules."""

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document("def add(a, b):\n    return a + b", metadata={"score": 0.9}),
                Document("def mul(a, b):\n    return a * b", metadata={"score": 0.7})]


@tool("sandbox.run")
def sandbox_run(program: str) -> str:
    """Run a program against its tests (a stand-in for the Docker sandbox)."""
    return f"passed: {len(program)} bytes"


def chat_model(reply: str = "1. write add\n2. test it") -> FakeMessagesListChatModel:
    message = AIMessage(reply, response_metadata={"model_name": "fake-planner"},
                        usage_metadata={"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
                                        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS})
    return FakeMessagesListChatModel(responses=[message])


def _normalise(docs: list[Document]) -> list[str]:
    return [d.page_content.strip() for d in docs]


def build(*, fail_in_tester: str | None = None, slow_tester_s: float = 0.0, name: str = "solve") -> Any:
    model, memory = chat_model(), ModuleMemory()
    normalise = RunnableLambda(_normalise, name="normalise")

    async def planner(state: State) -> dict[str, Any]:
        reply = await model.ainvoke([SystemMessage(SYSTEM), HumanMessage(state["task"])])
        return {"plan": str(reply.content)}

    async def recall(state: State) -> dict[str, Any]:
        docs = await memory.ainvoke(state.get("plan", ""))
        return {"modules": await normalise.ainvoke(docs)}

    async def tester(state: State) -> dict[str, Any]:
        if slow_tester_s:
            await asyncio.sleep(slow_tester_s)
        result = await sandbox_run.ainvoke({"program": "\n".join(state.get("modules", []))})
        if fail_in_tester:
            raise ValueError(fail_in_tester)
        return {"result": result, "verdict": "accepted"}

    graph = StateGraph(State)
    graph.add_node("planner", planner)
    graph.add_node("recall", recall)
    graph.add_node("tester", tester)
    graph.add_edge(START, "planner")
    graph.add_edge("planner", "recall")
    graph.add_edge("recall", "tester")
    graph.add_edge("tester", END)
    return graph.compile(name=name)
