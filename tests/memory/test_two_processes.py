"""Two processes sharing one Chroma server: overlapping adds lose nothing and create no duplicates."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from codestill.config import MemoryConfig
from memory import ModuleMemory

WORKER = r'''
import asyncio, json, sys
from codestill.config import MemoryConfig
from codestill.schemas import ModuleSpec
from memory import ModuleMemory
from tests.memory.conftest import module

url, collection, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
codes = [f"def shift_{i}(x):\n    \"\"\"Add {i} to x, then double it.\"\"\"\n    return (x + {i}) * 2\n" for i in range(n)]
# The same behaviour under other names: near duplicates of the codes above.
renamed = [c.replace(f"shift_{i}(x)", f"offset_{i}(value)").replace("(x +", "(value +").replace("to x", "to value")
           for i, c in enumerate(codes)]

async def main():
    with ModuleMemory(MemoryConfig(url=url, collection=collection)) as m:
        results = await asyncio.gather(*[m.aadd(module(c)) for c in codes + renamed],
                                       *[m.asearch(ModuleSpec(name="s", signature="def s(x)"), k=2) for _ in range(8)])
        print(json.dumps([r.status for r in results[: 2 * n]]))

asyncio.run(main())
'''


def test_two_processes_share_one_server(chroma_server, embedder):
    collection, n = f"t-{uuid.uuid4().hex[:12]}", 16
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, chroma_server, collection, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    statuses = [s for out, _ in outs for s in json.loads(out.strip().splitlines()[-1])]
    assert len(statuses) == 4 * n
    with ModuleMemory(MemoryConfig(url=chroma_server, collection=collection), embedder=embedder) as m:
        records = list(m.iter_all())
        assert len(records) == n  # one per behaviour, whoever won each race
        assert sum(r.times_added for r in records) == 4 * n  # every add counted once
        assert all(r.times_added == 4 for r in records)
