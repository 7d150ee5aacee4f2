"""Retrieval quality on a labelled set: queries that paraphrase what a standard-library function does
must find it in the top 3 for at least 80 % of them, in a memory holding every mined stdlib function."""

from __future__ import annotations

import json
from pathlib import Path

from codestill.config import MemoryConfig
from codestill.schemas import Module, ModuleSpec
from memory import ModuleMemory
from tools.mining import mine_tree, stdlib_root

QUERIES = Path(__file__).parents[2] / "bench" / "data" / "memory_queries.json"


def test_recall_at_3_on_the_stdlib(tmp_path, embedder):
    functions = list(mine_tree(stdlib_root()))
    assert len(functions) > 1000
    labelled = json.loads(QUERIES.read_text())["queries"]
    with ModuleMemory(MemoryConfig(path=tmp_path / "memory"), embedder=embedder) as memory:
        results = memory.add_many([Module(spec=ModuleSpec(name=f.name, signature=f.signature), code=f.code,
                                          verified=True) for f in functions])
        ids = {f.qualname: r.id for f, r in zip(functions, results, strict=True)}
        found = 0
        for q in labelled:
            wanted = {ids[t] for t in q["targets"] if t in ids}
            assert wanted, f"no mined function for {q['targets']}"
            hits = memory.search_text(q["query"], k=3)
            found += any(h.module.id in wanted for h in hits)
    recall = found / len(labelled)
    print(f"recall@3 = {recall:.3f} ({found}/{len(labelled)} queries, {len(functions)} stdlib functions)")
    assert recall >= 0.8
