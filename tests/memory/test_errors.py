"""A memory that cannot be used ends in one MemoryStoreError naming the cause and the fix."""

from __future__ import annotations

import pytest

from codestill.config import MemoryConfig
from codestill.errors import EmbeddingError, MemoryStoreError
from memory import ModuleMemory, SentenceTransformerEmbedder, make_embedder
from tests.memory.conftest import _free_port, module, running_chroma

PRIMES = "def is_prime(n):\n    \"\"\"Tell whether n is prime.\"\"\"\n    return n > 1 and all(n % d for d in range(2, n))\n"


def test_missing_store_is_not_created_by_readers(tmp_path, embedder):
    where = tmp_path / "nothing-here"
    with pytest.raises(MemoryStoreError, match=r"there is no module memory at .*nothing-here.*memory import"):
        ModuleMemory(MemoryConfig(path=where), embedder=embedder, create=False)
    assert not where.exists()


def test_corrupt_store(tmp_path, embedder):
    where = tmp_path / "memory"
    where.mkdir()
    (where / "chroma.sqlite3").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(MemoryStoreError, match=r"not a readable Chroma store.*restore it from an export"):
        ModuleMemory(MemoryConfig(path=where), embedder=embedder)


def test_embedded_store_refuses_a_second_writer(tmp_path, embedder):
    config = MemoryConfig(path=tmp_path / "memory")
    with ModuleMemory(config, embedder=embedder), \
            pytest.raises(MemoryStoreError, match=r"in use by another process.*memory\.url"):
        ModuleMemory(config, embedder=embedder)
    with ModuleMemory(config, embedder=embedder) as again:  # released on close
        assert len(again) == 0


def test_unreachable_server(embedder):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(MemoryStoreError, match=f"Chroma server at {url} does not answer.*chroma run"):
        ModuleMemory(MemoryConfig(url=url), embedder=embedder)


def test_server_that_goes_away_mid_session(tmp_path, embedder):
    with running_chroma(tmp_path / "server", tmp_path / "server.log") as url:
        memory = ModuleMemory(MemoryConfig(url=url), embedder=embedder)
        assert memory.add(module(PRIMES)).status == "added"
    # The server has stopped: the next call names the store and what to check, without a traceback.
    with pytest.raises(MemoryStoreError, match=f"module memory at {url} failed to .*check that it still runs"):
        memory.search_text("is a number prime", k=1)


class _OtherModel(SentenceTransformerEmbedder):
    @property
    def name(self) -> str:
        return "st:some-other-model"


def test_store_built_with_other_embeddings(tmp_path, embedder):
    config = MemoryConfig(path=tmp_path / "memory")
    with ModuleMemory(config, embedder=embedder) as m:
        m.add(module(PRIMES))
    with pytest.raises(MemoryStoreError, match=r"built with embeddings 'st:all-MiniLM-L6-v2'.*some-other-model"):
        ModuleMemory(config, embedder=_OtherModel())


def test_bad_embedding_specs():
    with pytest.raises(EmbeddingError, match="not understood"):
        make_embedder("word2vec:foo")
    with pytest.raises(EmbeddingError, match="cannot load the embedding model"):
        make_embedder("st:/no/such/model/dir").embed(["x"])
