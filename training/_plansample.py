"""CodePLAN's plan sampling at inference (``--plan-samples N``).

For each scored sample: sample N plans (at ``plan_temperature``, so they differ even when the code is
greedy), write code for each plan, run every candidate on the problem's *public* test (the first
assert, which the prompt shows for MBPP and HumanEval's docstring examples begin with), and keep the
first candidate that passes it; if none does, the one that passed most public tests, the first on a
tie. Only the kept candidate is scored on the hidden tests; all N are recorded with their plans.

A sample with a plan, a code reply or a public run that failed for reasons outside the model (a
transient server fault, a sandbox infrastructure fault) is skipped for a rerun, as in plain sampling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from codestill.ports import Sandbox
from codestill.schemas import ExecResult, Limits
from training._evalrun import Candidate
from training._generate import Generation, GenRequest, Sampler
from training._pipeline import Job, Pending, Sampling, request_seed
from training._prompts import code_request, plan_request, solution


@dataclass
class _Slot:
    """One scored sample in the making: its plans, then its candidates' code and public runs."""

    job: Job
    index: int
    plans: list[Generation]
    codes: list[Generation | None]  # None: no code asked (the plan itself failed)
    runs: list[ExecResult | None]


def choose(runs: Sequence[ExecResult | None]) -> int:
    """The first candidate that passed its public test(s), else the one that passed most, else 0."""
    for i, run in enumerate(runs):
        if run is not None and run.passed:
            return i
    scores = [run.n_passed if run is not None else -1 for run in runs]
    return scores.index(max(scores)) if scores else 0


async def sample_with_plans(sampler: Sampler, sandbox: Sandbox, jobs: Sequence[Job], sampling: Sampling,
                            public_limits: Limits) -> tuple[list[Pending], int]:
    n_plans = sampling.plan_samples
    plan_requests = [plan_request(j.problem, n=len(j.indices) * n_plans, temperature=sampling.plan_temperature,
                                  seed=request_seed(sampling.seed, j.problem.id, j.indices[0], "plan"))
                     for j in jobs]
    slots: list[_Slot] = []
    skipped = 0
    for job, gens in zip(jobs, await sampler.generate(plan_requests), strict=True):
        for s, index in enumerate(job.indices):
            plans = gens[s * n_plans: (s + 1) * n_plans]
            if any(g.transient for g in plans):
                skipped += 1
                continue
            slots.append(_Slot(job, index, plans, [None] * n_plans, [None] * n_plans))

    # Code for every plan that came back, all in one generate call (one batch for a local model).
    wanted: list[tuple[_Slot, int]] = []
    code_requests: list[GenRequest] = []
    for slot in slots:
        for j, plan in enumerate(slot.plans):
            if plan.error is None:
                wanted.append((slot, j))
                code_requests.append(code_request(
                    slot.job.problem, chat=True, n=1, temperature=sampling.temperature, plan=plan.text,
                    seed=request_seed(sampling.seed, slot.job.problem.id, slot.index, f"code {j}")))
    for (slot, j), gens in zip(wanted, await sampler.generate(code_requests) if code_requests else [], strict=True):
        slot.codes[j] = gens[0]

    async def public_run(slot: _Slot, j: int, code: str) -> None:
        slot.runs[j] = await sandbox.run(code, slot.job.problem.public, public_limits)

    runs = []
    for slot in slots:
        for j, gen in enumerate(slot.codes):
            if gen is not None and gen.error is None:
                runs.append(public_run(slot, j, _code(slot, gen)))
    await asyncio.gather(*runs)

    out: list[Pending] = []
    for slot in slots:
        if any(g is not None and g.transient for g in slot.codes) or any(
                r is not None and r.status == "infra_error" for r in slot.runs):
            skipped += 1
            continue
        out.append(_pending(slot))
    return out, skipped


def _code(slot: _Slot, gen: Generation) -> str:
    return solution(slot.job.problem, gen.text, chat=True)


def _pending(slot: _Slot) -> Pending:
    candidates = []
    for plan, gen, run in zip(slot.plans, slot.codes, slot.runs, strict=True):
        if gen is None or gen.error is not None:
            status = "gen_error"
        else:
            status = run.status if run is not None else "not_run"
        code = _code(slot, gen) if gen is not None and gen.error is None else ""
        candidates.append(Candidate(plan=plan.text if plan.error is None else "", code=code, public_status=status))
    usable = [i for i, c in enumerate(candidates) if c.public_status != "gen_error"]
    if not usable:  # no plan led to code: nothing to run, a failed sample
        errors = [g.error for g in (*slot.codes, *slot.plans) if g is not None and g.error]
        return Pending(slot.job, slot.index, "", "", gen_error=errors[0] if errors else "no candidate",
                       candidates=tuple(candidates))
    chosen = usable[choose([slot.runs[i] for i in usable])]
    reply = slot.codes[chosen].text  # type: ignore[union-attr]  # usable: the code came back
    return Pending(slot.job, slot.index, candidates[chosen].code, reply, candidates=tuple(candidates),
                   chosen=chosen)
