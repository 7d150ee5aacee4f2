"""Opening the Chroma store: embedded (``PersistentClient`` at a path, one process at a time) or a
server (``HttpClient``, shared). Every way it can fail becomes one ``MemoryStoreError`` with the fix."""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from codestill.config import MemoryConfig
from codestill.errors import MemoryStoreError

LOCK_FILE = ".codestill-memory.lock"
ORPHAN_WAIT_S = 60.0  # longest wait for a killed run's memory process to let go of the store
EMBEDDING_KEY = "codestill.embedding"


# A Chroma server answers a read of a collection whose vector index another request is creating at that
# moment with this internal error (a race inside the server, seen when two processes fill a fresh
# collection at once). The index is there a moment later, so such a read is retried, never surfaced.
HNSW_EF_SEARCH = 500
_TRANSIENT = ("Nothing found on disk", "Error creating hnsw segment reader")
_RETRIES = 6


class Collection:
    """The Chroma collection, with the server's transient read races retried and every other failure
    turned into one ``MemoryStoreError`` that names the store."""

    def __init__(self, inner: Any, where: str) -> None:
        self._inner, self._where = inner, where

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self._inner.metadata  # type: ignore[no-any-return]

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(_RETRIES + 1):
            try:
                return getattr(self._inner, op)(*args, **kwargs)
            except Exception as e:
                if attempt < _RETRIES and any(t in str(e) for t in _TRANSIENT):
                    time.sleep(0.02 * 2**attempt)
                    continue
                raise MemoryStoreError(
                    f"the module memory at {self._where} failed to {op} ({type(e).__name__}: {e}); if it is a "
                    "server, check that it still runs; if it is a folder, restore it from an export") from None
        raise AssertionError("unreachable")

    def add(self, **kw: Any) -> None:
        self._call("add", **kw)

    def get(self, **kw: Any) -> Any:
        return self._call("get", **kw)

    def update(self, **kw: Any) -> None:
        self._call("update", **kw)

    def delete(self, **kw: Any) -> None:
        self._call("delete", **kw)

    def query(self, **kw: Any) -> Any:
        return self._call("query", **kw)

    def count(self) -> int:
        return int(self._call("count"))


@dataclass
class Opened:
    client: Any
    collection: Collection
    where: str  # the path or URL, for messages
    shared: bool  # a server: other processes may write at the same time
    lock: IO[bytes] | None


def _settings() -> Any:
    from chromadb.config import Settings

    # No telemetry: nothing leaves the machine that the user did not ask for.
    return Settings(anonymized_telemetry=False)


def _lock(path: Path, parent: int | None = None) -> IO[bytes]:
    # Chroma's embedded store keeps its index in the memory of one process; a second process writing
    # the same folder corrupts it. A shared memory is what a Chroma server (memory.url) is for.
    f = (path / LOCK_FILE).open("a+b")
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            # A holder whose parent is gone is a batch run's memory process winding down after the run
            # was killed (it writes its pending counts, then exits): wait for it rather than fail the
            # run that resumes at once.
            if _orphaned_holder(f) and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            f.close()
            raise MemoryStoreError(
                f"the module memory at {path} is in use by another process (or another open memory in this one); "
                "wait for it to finish, or share one memory between processes through a Chroma server "
                "(`chroma run --path DIR`, then set memory.url)") from None
    f.seek(0)
    f.truncate()
    # ``parent``: whose death means this holder is winding down (a memory process's runner); it is
    # passed in because a child whose runner died while it started would read its new parent here.
    f.write(f"{os.getpid()} {parent if parent is not None else os.getppid()}".encode())
    f.flush()
    return f


def _orphaned_holder(f: IO[bytes]) -> bool:
    """Whether the lock's holder (``pid ppid`` in the file) has lost the parent it had when it locked."""
    try:
        f.seek(0)
        pid, ppid = (int(x) for x in f.read().split())
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1]) != ppid
    except (OSError, ValueError):
        return False  # no pair in the file, or no /proc: assume a live holder


def _embedded(config: MemoryConfig, create: bool, parent: int | None) -> tuple[Any, IO[bytes]]:
    import chromadb

    path = config.path
    if not (path / "chroma.sqlite3").exists():
        if not create:
            raise MemoryStoreError(
                f"there is no module memory at {path}; it is made by the first verified module a run adds, "
                "or by `codestill memory import FILE.jsonl`; check memory.path")
        path.mkdir(parents=True, exist_ok=True)
    lock = _lock(path, parent)
    try:
        return chromadb.PersistentClient(path=str(path), settings=_settings()), lock
    except Exception as e:
        lock.close()
        raise MemoryStoreError(
            f"the module memory at {path} is not a readable Chroma store ({e}); restore it from an export "
            "(`codestill memory import`) into an empty folder, or move it away to start afresh") from None


def _server(url: str) -> Any:
    import chromadb

    u = urlparse(url if "://" in url else f"http://{url}")
    if not u.hostname:
        raise MemoryStoreError(f"memory.url {url!r} is not a URL; use http://HOST:PORT")
    try:
        client = chromadb.HttpClient(host=u.hostname, port=u.port or (443 if u.scheme == "https" else 8000),
                                     ssl=u.scheme == "https", settings=_settings())
        client.heartbeat()
    except Exception as e:
        raise MemoryStoreError(
            f"the Chroma server at {url} does not answer ({type(e).__name__}); start it with "
            "`chroma run --path DIR --port PORT`, or unset memory.url to use the embedded store") from None
    return client


def open_store(config: MemoryConfig, embedding: str, create: bool = True, parent: int | None = None) -> Opened:
    """The configured collection, checked to have been built with ``embedding``."""
    lock = None
    if config.url:
        client, where = _server(config.url), config.url
    else:
        client, lock = _embedded(config, create, parent)
        where = str(config.path)
    try:
        names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
        if config.collection not in names and not create:
            raise MemoryStoreError(f"the module memory at {where} has no collection {config.collection!r}; "
                                   "check memory.collection, or import modules into it first")
        # ef_search 500 (Chroma's default is 100): at 100,000 records the approximate neighbours at 100
        # missed targets that the re-ranking (``_rank``) would have put first; 500 costs ~5 ms a query.
        collection = client.get_or_create_collection(
            config.collection, embedding_function=None,
            configuration={"hnsw": {"space": "cosine", "ef_search": HNSW_EF_SEARCH}},
            metadata={EMBEDDING_KEY: embedding})
    except MemoryStoreError:
        if lock:
            lock.close()
        raise
    except Exception as e:
        if lock:
            lock.close()
        raise MemoryStoreError(f"cannot open the module memory at {where} ({e}); restore it from an export "
                               "(`codestill memory import`) or move it away") from None
    built_with = (collection.metadata or {}).get(EMBEDDING_KEY)
    if built_with != embedding:
        if lock:
            lock.close()
        raise MemoryStoreError(
            f"the module memory at {where} was built with embeddings {built_with!r}, but memory.embedding is "
            f"{embedding!r}; set memory.embedding back, or export it and import into a new memory.path")
    return Opened(client=client, collection=Collection(collection, where), where=where, shared=bool(config.url), lock=lock)
