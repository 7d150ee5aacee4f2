"""The evaluation's pipeline: generate -> score in the sandbox -> append to disk, all at once.

Generation and execution overlap: producers put finished samples on a queue, ``pool_size`` workers
take them to the sandbox and write each record as it comes back. A server-backed sampler
(``Sampler.concurrent``) gets one producer per problem, all in flight (its client bounds the calls);
a local model gets one batch of problems at a time, so its worker thread is never asked twice at once.

A sample whose generation failed transiently (a server fault after the client's retries) or whose
run met a sandbox infrastructure fault is *not* written: it is not the model's failure, and a rerun
of the same command produces it. Everything else, including a reply with no code, is a scored sample.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from codestill.ports import Sandbox
from codestill.schemas import Limits, TestSuite
from training._bench import Problem
from training._evalrun import Candidate, SampleRecord, SampleWriter, sample_record
from training._generate import Sampler
from training._prompts import code_request, solution


@dataclass(frozen=True)
class Job:
    """A problem, the sample indices it still needs, and the hidden tests that score them."""

    problem: Problem
    indices: tuple[int, ...]
    suite: TestSuite
    limits: Limits


@dataclass(frozen=True)
class Sampling:
    temperature: float
    seed: int
    plan_samples: int = 0
    plan_temperature: float = 0.8


@dataclass(frozen=True)
class Pending:
    """A generated sample on its way to the sandbox (``gen_error``: nothing to run, scored as failed)."""

    job: Job
    index: int
    code: str
    reply: str
    gen_error: str | None = None
    candidates: tuple[Candidate, ...] = ()
    chosen: int | None = None


@dataclass
class Outcome:
    """What one run of the pipeline did."""

    written: int = 0
    skipped: int = 0  # transient generation failures and sandbox infrastructure faults: left for a rerun


# jobs -> (samples to score, how many samples were skipped)
Producer = Callable[[Sequence[Job]], Awaitable[tuple[list[Pending], int]]]
OnSample = Callable[[SampleRecord | None], None]


def request_seed(seed: int, problem_id: str, index: int, salt: str = "") -> int:
    """A stable per-request seed: a resumed or repeated run asks the server the same thing."""
    digest = hashlib.sha256(f"{seed}|{problem_id}|{index}|{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # 31 bits: every server takes it


async def sample_code(sampler: Sampler, jobs: Sequence[Job], sampling: Sampling) -> tuple[list[Pending], int]:
    """Plain sampling: all of a job's missing samples in one request (n choices)."""
    requests = [code_request(j.problem, chat=sampler.chat, n=len(j.indices), temperature=sampling.temperature,
                             seed=request_seed(sampling.seed, j.problem.id, j.indices[0])) for j in jobs]
    out: list[Pending] = []
    skipped = 0
    for job, gens in zip(jobs, await sampler.generate(requests), strict=True):
        for index, gen in zip(job.indices, gens, strict=True):
            if gen.error and gen.transient:
                skipped += 1
            elif gen.error:
                out.append(Pending(job, index, "", gen.text, gen_error=gen.error))
            else:
                out.append(Pending(job, index, solution(job.problem, gen.text, chat=sampler.chat), gen.text))
    return out, skipped


def chunks(jobs: Sequence[Job], sampler: Sampler, per_sample: int) -> list[list[Job]]:
    """Jobs grouped into generate calls: one per job for a server, else about ``batch_size`` sequences."""
    if sampler.concurrent:
        return [[j] for j in jobs]
    out: list[list[Job]] = []
    size = 0
    for job in jobs:
        if out and size + len(job.indices) * per_sample <= sampler.batch_size:
            out[-1].append(job)
            size += len(job.indices) * per_sample
        else:
            out.append([job])
            size = len(job.indices) * per_sample
    return out


async def run_jobs(chunk_jobs: Sequence[Sequence[Job]], produce: Producer, *, concurrent: bool, sandbox: Sandbox,
                   workers: int, writer: SampleWriter, on_sample: OnSample) -> Outcome:
    """Produce every chunk (all at once when ``concurrent``), score every sample, write every record.

    The first exception (a fatal model or sandbox error) cancels the rest and propagates as itself,
    not wrapped in an exception group, so the CLI can show its one-line message."""
    queue: asyncio.Queue[Pending | None] = asyncio.Queue()
    outcome = Outcome()

    async def produce_chunk(chunk: Sequence[Job]) -> None:
        pendings, skipped = await produce(chunk)
        outcome.skipped += skipped
        for _ in range(skipped):
            on_sample(None)
        for p in pendings:
            queue.put_nowait(p)

    async def producer() -> None:
        if concurrent:
            async with asyncio.TaskGroup() as group:
                for chunk in chunk_jobs:
                    group.create_task(produce_chunk(chunk))
        else:
            for chunk in chunk_jobs:
                await produce_chunk(chunk)
        for _ in range(workers):
            queue.put_nowait(None)  # one stop mark per worker

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            record = await score(item, sandbox)
            if record is None:
                outcome.skipped += 1
            else:
                writer.write(record)
                outcome.written += 1
            on_sample(record)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(producer())
            for _ in range(workers):
                group.create_task(worker())
    except BaseExceptionGroup as eg:
        raise _first(eg) from None
    return outcome


def _first(eg: BaseExceptionGroup) -> BaseException:
    first = eg.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def score(item: Pending, sandbox: Sandbox) -> SampleRecord | None:
    """Run one sample against the hidden tests; None for an infrastructure fault (not a verdict)."""
    extra = {"candidates": list(item.candidates), "chosen": item.chosen}
    if item.gen_error is not None:
        return sample_record(item.job.problem.id, item.index, item.code, item.reply, None, item.gen_error, **extra)
    result = await sandbox.run(item.code, item.job.suite, item.job.limits)
    if result.status == "infra_error":
        return None
    return sample_record(item.job.problem.id, item.index, item.code, item.reply, result, **extra)
