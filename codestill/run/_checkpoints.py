"""The solve graph's checkpointer: LangGraph's SQLite saver, each call run whole on a worker thread.

Why not ``AsyncSqliteSaver``: it holds an ``asyncio.Lock`` across every step of a call (open a
cursor, execute, fetch, commit), and each step is a round trip through aiosqlite's thread and back
to the event loop. With 32 tasks on one busy loop, each round trip waits its turn, the lock is held
through all of them, and every task's first read and last write queued behind the others': 80-110 ms
per task in ``bench/solve_overhead.py``. Here a call is one hop to a thread, and the saver's own
``threading.Lock`` is held only while SQLite works. Same tables, same file: either saver reads what
the other wrote.

    async with open_checkpointer(path) as saver:
        graph = build_graph(saver)
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["ThreadedSqliteSaver", "open_checkpointer", "serializer"]


def serializer() -> JsonPlusSerializer:
    """The checkpoint serialiser, allowed to read back exactly the records the solve state holds."""
    from pydantic import BaseModel

    import codestill.schemas
    import graphs._state

    allowed = [(m.__name__, name) for m in (codestill.schemas, graphs._state) for name, obj in vars(m).items()
               if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == m.__name__]
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


class ThreadedSqliteSaver(SqliteSaver):
    """``SqliteSaver`` with the async methods LangGraph's async loop calls, each one thread hop."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in found:
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Mapping[str, Any]:
        return await asyncio.to_thread(lambda: self.get_delta_channel_history(config=config, channels=channels))


@asynccontextmanager
async def open_checkpointer(path: Path | str) -> AsyncIterator[ThreadedSqliteSaver]:
    """A saver on the SQLite file ``path`` (created with its tables), closed on leaving."""
    # check_same_thread=False: calls come from worker threads; the saver's lock serialises them.
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        saver = ThreadedSqliteSaver(conn, serde=serializer())
        await asyncio.to_thread(saver.setup)
        yield saver
    finally:
        conn.close()
