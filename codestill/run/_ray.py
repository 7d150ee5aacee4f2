"""`codestill generate --engine ray`: the same run spread over a Ray cluster.

The inputs are dealt round-robin to ``workers`` shards. Each shard is one Ray task running the same
async runner as a local run (``codestill.run._open.run_local``) into its own directory,
``runs/NAME/shards/K-of-N/`` with its own ledger, trajectories and traces, so a killed worker resumes
exactly like a killed local run. At the end the shards are merged into ``runs/NAME/ledger.sqlite`` and
``trajectories.jsonl`` (``codestill.run._ledger.merge``), the same files a local run leaves.

The module memory is shared through a Chroma server: ``memory.url`` when set, else one started here
for the run over ``memory.path`` (only reachable on this machine: joining a cluster with
``--ray-address`` needs ``memory.url``). The run directory must be on storage every node sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from codestill.config import Settings
from codestill.errors import ConfigError


def _shard_main(settings: Settings, specs: dict[str, str], instruct_spec: str, items: list[Any], shard_dir: str,
                pipeline: str, concurrency: int) -> dict[str, Any]:
    """One shard, in a Ray worker process: the local runner, to the end of its inputs."""
    from codestill.run._open import run_local

    outcome, wall, sandbox = asyncio.run(run_local(settings, specs, instruct_spec, items, Path(shard_dir),
                                                   pipeline=pipeline, concurrency=concurrency))
    return {"committed": outcome.committed, "fatal": str(outcome.fatal) if outcome.fatal else None,
            "wall_s": wall, "sandbox": sandbox}


@contextlib.contextmanager
def _shared_memory(settings: Settings, joining: bool) -> Iterator[Settings]:
    if settings.memory.url:
        yield settings
        return
    if joining:
        raise ConfigError("--ray-address joins a cluster whose workers cannot reach a memory on this machine; "
                          "run `chroma run --path DIR --host 0.0.0.0` somewhere they can, and set memory.url")
    from memory._server import chroma_server

    with chroma_server(settings.memory.path) as url:
        yield settings.model_copy(update={"memory": settings.memory.model_copy(update={"url": url})})


def _init(address: str | None, workers: int) -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'codestill[scale]'") from None
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
    return ray


def run_ray(settings: Settings, specs: dict[str, str], instruct_spec: str, items: list[Any], run_dir: Path, *,
            pipeline: str, concurrency: int, workers: int, address: str | None,
            console: Console) -> dict[str, Any]:
    from codestill.run._display import BatchDisplay
    from codestill.run._ledger import committed, merge
    from codestill.run._rundir import RunDir
    from codestill.traces import merge_stores

    ray = _init(address, workers)
    dirs = [run_dir / "shards" / f"{k}-of-{workers}" for k in range(workers)]
    per_worker = max(1, concurrency // workers)
    display = BatchDisplay(console, len(items), 0, f"{pipeline} {run_dir.name} on {workers} Ray workers")
    results: list[dict[str, Any]] = []
    interrupted = False
    with _shared_memory(settings, joining=bool(address)) as shared:
        remote = ray.remote(num_cpus=1, max_retries=0)(_shard_main)
        refs = [remote.remote(shared, specs, instruct_spec, items[k::workers], str(d), pipeline, per_worker)
                for k, d in enumerate(dirs)]
        read_to = dict.fromkeys(dirs, 0)  # per shard: the byte its poll has read up to
        seen: set[str] = set()  # an input with no lines ends where it starts: it would be read again
        with display:
            try:
                pending = list(refs)
                while pending:
                    _, pending = ray.wait(pending, timeout=0.5, num_returns=len(pending))
                    for d in dirs:  # progress straight from the shards' ledgers, new entries only
                        for entry, lines in committed(d, read_to[d]):
                            read_to[d] = entry.end
                            if entry.input_id in seen:
                                continue
                            seen.add(entry.input_id)
                            display.in_flight += 1
                            display.done(entry, _trajectories(lines))
                results = ray.get(refs)
            except KeyboardInterrupt:
                interrupted = True
                for r in refs:
                    ray.cancel(r)
                time.sleep(1.0)
    merge(run_dir, [d for d in dirs if d.is_dir()])
    stores = [RunDir(d).traces_path for d in dirs if RunDir(d).traces_path.is_file()]
    if stores:
        merge_stores(RunDir(run_dir).traces_path, stores)
    fatal = next((r["fatal"] for r in results if r.get("fatal")), None)
    return {"interrupted": interrupted, "stopped": interrupted, "fatal": fatal, "wall_s": None,
            "sandbox": {"runs": sum(r["sandbox"]["runs"] for r in results),
                        "seconds": round(sum(r["sandbox"]["seconds"] for r in results), 3)}}


def _trajectories(lines: list[bytes]) -> list[Any]:
    from codestill.schemas import Trajectory

    return [Trajectory.model_validate_json(line) for line in lines]
