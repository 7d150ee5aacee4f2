"""Two processes sharing one Chroma server: overlapping adds lose nothing and create no duplicates."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from codestill.config import MemoryConfig
from codestill.schemas import StoredModule
from memory import ModuleMemory
from tests.memory.conftest import module
from tests.memory.test_conformance import DEDENT, DEDENT_RENAMED

WORKER = r'''
import asyncio, json, sys
from codestill.config import MemoryConfig
from codestill.schemas import ModuleSpec
from memory import ModuleMemory
from tests.memory.conftest import module
from tests.memory.test_conformance import DEDENT, DEDENT_RENAMED

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


class _Blind(ModuleMemory):
    """Sees no near duplicate before it inserts: what a process sees when another process inserts the
    same behaviour at the same instant. Only the check after its insert sees the store as it is."""

    def _near(self, items, vectors, skip_self=False):  # type: ignore[no-untyped-def]
        return super()._near(items, vectors, skip_self) if skip_self else [[] for _ in items]


def _record(memory: ModuleMemory, id_: str) -> StoredModule:
    found = memory.get(id_)
    assert found is not None, id_
    return found


def test_a_lost_race_leaves_an_alias_that_keeps_its_counts(chroma_server, embedder):
    config = MemoryConfig(url=chroma_server, collection=f"t-{uuid.uuid4().hex[:12]}")
    older, newer = DEDENT, DEDENT_RENAMED
    oldest = DEDENT_RENAMED.replace("strip_margin(block)", "trim_margin(s)").replace("block", "s")
    with ModuleMemory(config, embedder=embedder) as a, _Blind(config, embedder=embedder) as b:
        x = a.add(module(older))
        assert x.id is not None
        # b inserts a near duplicate of x, then finds x older than its own record: its record yields.
        y = b.add(module(newer))
        assert (y.status, y.id) == ("near_duplicate", x.id)
        assert len(a) == 1 and _record(a, x.id).times_added == 2
        y_id = next(r.id for r in b.add_many([module(newer)]))  # an exact re-add of the yielded record
        assert y_id == x.id and _record(a, x.id).times_added == 3
        # An import brings a record older than x, inserted after it: x yields in turn, and every count
        # (including one written to x afterwards) ends on the oldest.
        imported = StoredModule(**{**_record(a, x.id).model_dump(), "id": "", "code": oldest, "name": "trim_margin",
                                   "signature": "def trim_margin(s)", "created_at": datetime(2000, 1, 1, tzinfo=UTC),
                                   "times_added": 5, "times_retrieved": 0, "times_reused": 0})
        z = b.add_many([imported])[0]
        assert z.status == "added" and z.id is not None
        a.mark_reused([x.id])
        records = list(a.iter_all())
        assert [r.id for r in records] == [z.id] and len(a) == 1
        assert (records[0].times_added, records[0].times_reused) == (3 + 5, 1)
        assert _record(a, x.id).id == z.id and _record(a, x.id).times_added == 8
        hits = a.search_text("remove the common leading whitespace of lines", k=3)
        assert [h.module.id for h in hits] == [z.id]  # the aliases stand for it, once
        assert a.remove(x.id) and len(a) == 0 and a.get(z.id) is None and list(a.iter_all()) == []
