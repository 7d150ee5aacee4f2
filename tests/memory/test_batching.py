"""Concurrent embedding calls share model calls and each gets its own vectors back."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from memory import BatchingEmbedder, SentenceTransformerEmbedder


class Counting(SentenceTransformerEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.fail_on: str | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model broke")
        return super().embed(texts)


def _hammer(embedder: BatchingEmbedder, texts: list[list[str]]) -> list[np.ndarray | BaseException]:
    out: list[np.ndarray | BaseException] = [np.zeros(0)] * len(texts)
    start = threading.Barrier(len(texts))

    def work(i: int) -> None:
        start.wait()
        try:
            out[i] = embedder.embed(texts[i])
        except BaseException as e:
            out[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_calls_share_model_calls_and_get_their_own_vectors() -> None:
    inner = Counting()
    texts = [[f"def f{i}(x: int) -> int: add {i} to x"] + ([f"a second text {i}"] if i % 3 == 0 else [])
             for i in range(24)]
    direct = [inner.embed(t) for t in texts]
    inner.calls.clear()
    got = _hammer(BatchingEmbedder(inner), texts)
    for want, have in zip(direct, got, strict=True):
        assert isinstance(have, np.ndarray) and have.shape == want.shape
        assert np.allclose(have, want, atol=1e-5)
    assert sum(inner.calls) == sum(len(t) for t in texts)
    assert len(inner.calls) < len(texts)  # some calls were shared


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_calls_work() -> None:
    inner = Counting()
    batching = BatchingEmbedder(inner)
    inner.fail_on = "poison"
    got = _hammer(batching, [["poison"]] + [[f"text {i}"] for i in range(7)])
    assert isinstance(got[0], RuntimeError)
    assert all(isinstance(g, RuntimeError | np.ndarray) for g in got)
    inner.fail_on = None
    assert batching.embed(["fine"]).shape == (1, 384)
    with pytest.raises(RuntimeError):
        inner.fail_on = "again"
        batching.embed(["again"])


def test_recent_texts_are_not_embedded_again_and_the_cache_is_bounded() -> None:
    inner = Counting()
    batching = BatchingEmbedder(inner, cache_size=3)
    first = batching.embed(["a", "b", "a"])
    assert inner.calls == [2]  # "a" twice in one call: embedded once
    assert np.allclose(first[0], first[2]) and first.shape == (3, 384)
    again = batching.embed(["b", "a", "c"])
    assert inner.calls == [2, 1] and np.allclose(again[0], first[1]) and np.allclose(again[1], first[0])
    batching.embed(["d"])  # the cache holds 3: "b" (least recently used) is dropped
    batching.embed(["a", "b"])
    assert inner.calls == [2, 1, 1, 1]
    assert np.allclose(batching.embed(["c"])[0], inner.embed(["c"])[0], atol=1e-5)
    calls = len(inner.calls)
    batching.forget()
    batching.embed(["c"])
    assert len(inner.calls) == calls + 1
