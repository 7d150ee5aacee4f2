"""Module-memory scale: insert rate, search latency and recall@3 as the memory grows to 100,000 records.

Fills an embedded memory (a fresh temporary folder) with every distinct top-level documented function
of the CPython standard library on this machine (mined with ``tools.mining``), then with synthetic
variants up to ``--records``. A variant composes two mined functions, ``f_then_g(*args, **kwargs) ->
g(f(...))``, documented by naming the two (``Apply textwrap.dedent to the arguments, then json.dumps
to its result.``): a distinct module (its own code, skeleton and meaning), not a near duplicate, so
the memory really holds that many records, each original function's name recurring in ~150 of them.

Everything goes through the public ``ModuleMemory.add_many`` (embedding, duplicate checks, the records'
nearest-neighbour lists that the hubness discount reads, insert) in
batches of ``--batch``. Measured twice, side by side: with only the stdlib functions, and at full size:

- search latency: ``ModuleMemory.search(spec, k=3)`` (embedding the spec, the query, counting the
  hits as retrieved) for the labelled queries and specs written from mined functions' summaries;
- recall@3: the labelled set in ``bench/data/memory_queries.json`` (queries paraphrasing what a
  stdlib function does; a hit is any labelled target in the top 3).

    .venv/bin/python bench/memory_scale.py [--records 100000] [--batch 512] [--searches 300]

Targets on the 2-core machine: search_p95_ms <= 50 at 100,000 records, recall_at_3 >= 0.8. Last line:

    memory: records=<int> insert_per_s=<float> search_p50_ms=<float> search_p95_ms=<float> recall_at_3=<float>
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from _progress import progress_bar
from rich.console import Console
from rich.table import Table

from codestill.config import MemoryConfig
from codestill.runtime import prefer_passive_openmp
from codestill.schemas import Module, ModuleSpec
from memory import ModuleMemory
from memory._meta import summary
from tools.mining import MinedFunction, mine_tree, stdlib_root

QUERIES = Path(__file__).parent / "data" / "memory_queries.json"


def module_of(f: MinedFunction) -> Module:
    return Module(spec=ModuleSpec(name=f.name, signature=f.signature), code=f.code, verified=True,
                  task_id=f"stdlib/{f.qualname}")


def variant(f: MinedFunction, g: MinedFunction) -> Module:
    # Documented the way a programmer documents a pipeline helper: by naming what it composes.
    name = f"{f.name}_then_{g.name}"
    code = (f'def {name}(*args, **kwargs):\n    """Apply {f.qualname} to the arguments, then {g.qualname} to its '
            f'result."""\n    return {g.name}({f.name}(*args, **kwargs))\n')
    return Module(spec=ModuleSpec(name=name, signature=f"def {name}(*args, **kwargs)"), code=code, verified=True,
                  task_id=f"synthetic/{f.qualname}+{g.qualname}")


def fill(memory: ModuleMemory, modules: list[Module], batch: int, label: str, console: Console) -> tuple[int, float]:
    added, start = 0, time.perf_counter()
    with progress_bar(console, "records") as bar:
        task = bar.add_task(label, total=len(modules))
        for i in range(0, len(modules), batch):
            chunk = modules[i:i + batch]
            added += sum(r.status == "added" for r in memory.add_many(chunk))
            bar.advance(task, len(chunk))
    return added, time.perf_counter() - start


def measure(memory: ModuleMemory, specs: list[ModuleSpec], labelled: list[dict], ids: dict[str, str],
            console: Console, label: str) -> tuple[float, float, float]:
    for spec in specs[:5]:  # warm-up: first calls pay for lazy initialisation
        memory.search(spec, k=3, count=False)
    memory.embedder.forget()  # every timed search embeds its spec, as a new one would
    times = []
    with progress_bar(console, "searches") as bar:
        task = bar.add_task(label, total=len(specs))
        for spec in specs:
            t = time.perf_counter()
            memory.search(spec, k=3)
            times.append((time.perf_counter() - t) * 1000)
            bar.advance(task)
    found = 0
    for q in labelled:
        wanted = {ids[t] for t in q["targets"] if t in ids}
        found += any(h.module.id in wanted for h in memory.search_text(q["query"], k=3))
    p95 = statistics.quantiles(times, n=20)[-1]
    return statistics.median(times), p95, found / len(labelled)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--searches", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="Build the memory in this (new) folder and keep it.")
    args = ap.parse_args()
    prefer_passive_openmp()  # as the codestill command does; see codestill/runtime.py
    console = Console(stderr=True)
    rng = random.Random(args.seed)

    functions = list(mine_tree(stdlib_root()))
    labelled = json.loads(QUERIES.read_text())["queries"]
    # The searches: the labelled queries as specs, then specs written from mined functions' summaries.
    specs = [ModuleSpec(name="wanted", signature="def wanted(*args)", description=q["query"]) for q in labelled]
    for f in rng.sample(functions, max(0, args.searches - len(specs))):
        specs.append(ModuleSpec(name=f.name, signature=f.signature, description=summary(f.docstring, 200)))

    with tempfile.TemporaryDirectory(prefix="codestill-memory-bench-") as tmp, \
            ModuleMemory(MemoryConfig(path=args.keep or Path(tmp) / "memory")) as memory:
        console.print(f"{len(functions)} documented top-level functions mined from {stdlib_root()}")
        base = [module_of(f) for f in functions]
        results = memory.add_many(base[:1])  # loads the model before anything is timed
        stdlib_added, stdlib_s = fill(memory, base[1:], args.batch, "stdlib", console)
        results += memory.add_many(base[1:])  # all duplicates now: gives every function its record id
        ids = {f.qualname: r.id for f, r in zip(functions, results, strict=True) if r.id is not None}
        if args.keep:
            (args.keep / "ids.json").write_text(json.dumps(ids))
        small = (len(memory), *measure(memory, specs, labelled, ids, console, "search"))

        # Distinct by name pair: ntpath.split and posixpath.split would make the same variant code.
        pairs: dict[tuple[str, str], tuple[int, int]] = {}
        wanted = max(0, args.records - len(memory))  # once: len() asks the store
        while len(pairs) < wanted:
            i, j = rng.randrange(len(functions)), rng.randrange(len(functions))
            if functions[i].name != functions[j].name:
                pairs.setdefault((functions[i].name, functions[j].name), (i, j))
        variants = [variant(functions[i], functions[j]) for i, j in sorted(pairs.values())]
        rng.shuffle(variants)
        added, fill_s = fill(memory, variants, args.batch, "variants", console)
        records = len(memory)
        insert_per_s = (stdlib_added + 1 + added) / (stdlib_s + fill_s)
        large = (records, *measure(memory, specs, labelled, ids, console, "search"))

    table = Table(title="module memory: stdlib only vs full size")
    for column in ("records", "search p50 ms", "search p95 ms", "recall@3"):
        table.add_column(column, justify="right")
    for n, p50, p95, recall in (small, large):
        table.add_row(str(n), f"{p50:.1f}", f"{p95:.1f}", f"{recall:.3f}")
    console.print(table)
    console.print(f"insert: {stdlib_added + 1 + added} records in {stdlib_s + fill_s:.1f} s "
                  f"(embedding, duplicate checks and insert, batches of {args.batch})")
    _, p50, p95, recall = large
    print(f"memory: records={records} insert_per_s={insert_per_s:.1f} search_p50_ms={p50:.2f} "
          f"search_p95_ms={p95:.2f} recall_at_3={recall:.3f}")


if __name__ == "__main__":
    main()
