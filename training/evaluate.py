"""Evaluating a model: pass@k on HumanEval, MBPP, HumanEval+ and MBPP+, every sample run in the sandbox.

    from training.evaluate import EvalConfig, evaluate
    summary = evaluate(EvalConfig(model="openai:codestill-sim@http://127.0.0.1:8000/v1", bench="mbpp",
                                  n=10, k=(1, 10), out=Path("eval/sim-mbpp")))
    summary.pass_at_k  # {"pass@1": ..., "pass@10": ...}

How (each part in its own module):

- problems: ``_bench`` (the benchmarks shipped in ``codestill/data``, one ``Problem`` type);
- prompts and how a reply becomes a program: ``_prompts``; models: ``_generate`` (a ``codestill.llm``
  chat spec, or a local / hub checkpoint through transformers, or vLLM when installed with a GPU);
- n samples per problem (greedy when n = 1), plan sampling when asked: ``_pipeline``, ``_plansample``;
- execution: the Docker sandbox with the benchmark's own tests; for the plus benchmarks EvalPlus's
  protocol (``_truth``: reference outputs and per-input time limits; ``_harness``: the in-sandbox check);
- pass@k: ``_passk``; the output directory and resume: ``_evalrun``; the protocol and summary: ``_report``;
- which evaluated problems a local model was trained on (its ``training_data.json``): ``_overlap``.

Everything a user can get wrong (unknown benchmark or id, k > n, a model spec that is not understood,
an unreachable server, a directory that is not a model, no Docker engine, an output directory of
another evaluation) is a ``CodestillError`` raised before anything is written.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.console import Console

from codestill.config import Settings, load_settings
from codestill.errors import ConfigError, first_problem
from codestill.ports import Sandbox
from codestill.run import open_deps
from codestill.schemas import ExecResult, Limits, TestSuite
from training._bench import BENCHES, EvalSplit, Problem, load_problems, resolve_split, split_problems
from training._evalprogress import EvalProgress
from training._evalrun import (
    CONFIG,
    RESULTS,
    SAMPLES,
    SUMMARY,
    SampleWriter,
    check_same_run,
    read_samples,
    write_json,
    write_lines,
)
from training._generate import PromptStyle, Sampler, make_sampler
from training._overlap import model_overlap
from training._pipeline import Job, Pending, Sampling, chunks, run_jobs, sample_code
from training._plansample import sample_with_plans
from training._report import (
    EvalSummary,
    dataset_text,
    overlap_warning,
    problem_rows,
    protocol,
    render,
    summary_counts,
)
from training._truth import plus_suite, reference_outputs

DEFAULT_KS = (1, 10, 100)
SAMPLING_TEMPERATURE = 0.8  # n > 1 without --temperature: the usual choice for pass@10 and up (Codex paper)


class EvalConfig(BaseModel):
    """One evaluation. ``k`` defaults to those of 1, 10, 100 that are <= n; ``temperature`` to 0 (greedy)
    when n == 1, else 0.8. Both are filled in on validation, so config.json records what was used."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="openai:<model>[@<url>], hf:<hub id or dir>, or a directory.")
    bench: str = Field(description="humaneval, humaneval+, mbpp or mbpp+.")
    out: Path
    n: int = Field(default=1, ge=1, description="Samples per problem.")
    k: tuple[int, ...] | None = None
    split: EvalSplit | None = Field(default=None, description="Which problems: mbpp -> test (257), the others -> all; "
                                    "filled in on validation.")
    limit: int | None = Field(default=None, ge=1, description="Only the first so many problems (after --ids).")
    ids: tuple[str, ...] = ()
    temperature: float | None = Field(default=None, ge=0)
    plan_samples: int = Field(default=0, ge=0, description="CodePLAN plan sampling: candidates per sample; 0 = off.")
    plan_temperature: float = Field(default=0.8, gt=0)
    max_new_tokens: int = Field(default=768, ge=1)
    batch_size: int = Field(default=16, ge=1, description="Sequences a local model decodes at once.")
    prompt_style: PromptStyle = "auto"
    engine: Literal["auto", "transformers", "vllm"] = "auto"
    seed: int = 0
    truth_cache: Path = Field(default=Path(".codestill/evalplus"),
                              description="Where the plus benchmarks' reference outputs are kept.")

    @field_validator("bench")
    @classmethod
    def _known_bench(cls, value: str) -> str:
        if value not in BENCHES:
            raise ValueError(f"unknown benchmark {value!r}; use one of: {', '.join(BENCHES)}")
        return value

    @model_validator(mode="after")
    def _resolve(self) -> EvalConfig:
        ks = self.k or tuple(k for k in DEFAULT_KS if k <= self.n)
        for k in ks:
            if not 1 <= k <= self.n:
                raise ValueError(f"pass@{k} needs at least {k} samples per problem but n={self.n}; "
                                 f"raise --n to {k} or more, or lower --k")
        self.k = tuple(sorted(set(ks)))
        self.split = resolve_split(self.bench, self.split)  # ValueError for a split HumanEval lacks
        if self.temperature is None:
            self.temperature = 0.0 if self.n == 1 else SAMPLING_TEMPERATURE
        return self

    @property
    def ks(self) -> tuple[int, ...]:
        assert self.k is not None  # filled in by _resolve
        return self.k

    @property
    def chosen_split(self) -> EvalSplit:
        assert self.split is not None  # filled in by _resolve
        return self.split

    @property
    def sampling_temperature(self) -> float:
        assert self.temperature is not None  # filled in by _resolve
        return self.temperature


def eval_config(values: dict[str, Any]) -> EvalConfig:
    """An EvalConfig from loose values (the CLI's); an invalid one is one ConfigError line."""
    try:
        return EvalConfig.model_validate(values)
    except ValidationError as e:
        where, msg = first_problem(e)
        raise ConfigError(f"invalid evaluation setting {where}: {msg}" if where else msg) from None


def redact(spec: str) -> str:
    """The model spec without credentials a URL might carry (``http://user:key@host``)."""
    return re.sub(r"(https?://)[^/@\s]+@", r"\1***@", spec)


def _identity(config: EvalConfig, model: str) -> dict[str, Any]:
    """What must not change between a run and its resumption: how samples are drawn (not which problems:
    --split, --ids and --limit only change which samples are wanted)."""
    return {"model": model, "bench": config.bench, "prompt_style": config.prompt_style,
            "temperature": config.sampling_temperature, "plan_samples": config.plan_samples,
            "plan_temperature": config.plan_temperature if config.plan_samples else None,
            "max_new_tokens": config.max_new_tokens, "seed": config.seed}


def evaluate(config: EvalConfig, settings: Settings | None = None, *, console: Console | None = None,
             sampler: Sampler | None = None) -> EvalSummary:
    """Run (or resume) ``config``; progress bars on ``console`` when given (``render`` prints the
    summary table). ``sampler`` replaces the model ``config.model`` names (it is then not closed here)."""
    return asyncio.run(aevaluate(config, settings, console=console, sampler=sampler))


async def aevaluate(config: EvalConfig, settings: Settings | None = None, *, console: Console | None = None,
                    sampler: Sampler | None = None) -> EvalSummary:
    """``evaluate`` for callers that already run an event loop."""
    started = time.perf_counter()
    settings = settings or load_settings()
    problems = load_problems(config.bench, config.ids, config.limit, config.chosen_split)
    model = redact(sampler.name if sampler is not None else config.model)
    check_same_run(config.out, _identity(config, model))
    if config.plan_samples and config.prompt_style == "base":
        raise ConfigError("--plan-samples needs a chat model (plans and code are asked for in chat turns); "
                          "drop --prompt-style base")
    trained = model_overlap(config.model, problems)
    if trained[1] and console is not None:  # said before the samples take their time, and again at the end
        console.print(overlap_warning(trained[1], len(problems), trained[0]), highlight=False, soft_wrap=True)
    own = sampler is None
    if sampler is None:
        sampler = await _open_sampler(config, settings)
    try:
        if config.plan_samples and not sampler.chat:
            raise ConfigError(f"{model} has no chat template, and --plan-samples asks for plans in chat turns; "
                              "evaluate it without --plan-samples")
        # no engine or no image: the error says how to fix it, nothing written yet
        async with open_deps(settings, "eval") as deps:
            assert deps.sandbox is not None
            return await _run(config, settings, problems, sampler, deps.sandbox, model, console, started, trained)
    finally:
        if own:
            await sampler.aclose()


async def _open_sampler(config: EvalConfig, settings: Settings) -> Sampler:
    sampler = await asyncio.to_thread(  # a local checkpoint loads for seconds: keep the loop free
        make_sampler, config.model, settings.llm, max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size, style=config.prompt_style, engine=config.engine, seed=config.seed)
    if config.model.startswith("openai:"):
        from codestill.llm import check_model

        try:  # an unreachable server, a bad key or an unknown model: say so now, not after n failed samples
            await check_model(config.model, settings.llm)
        except BaseException:
            await sampler.aclose()
            raise
    return sampler


async def _run(config: EvalConfig, settings: Settings, problems: list[Problem], sampler: Sampler,
               sandbox: Sandbox, model: str, console: Console | None, started: float,
               trained: tuple[str | None, list[str]] = (None, [])) -> EvalSummary:
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in (SUMMARY, RESULTS):  # a summary on disk is always that of a finished run of what is there
        (out / stale).unlink(missing_ok=True)
    write_json(out / CONFIG, {"eval": {**config.model_dump(mode="json"), "model": model},
                              "identity": _identity(config, model), "settings": settings.record()})
    existing = read_samples(out)
    with EvalProgress(console) as bars:
        excluded: dict[str, str] = {}
        suites = {p.id: (p.tests, settings.sandbox.limits) for p in problems if p.tests is not None}
        if problems and problems[0].plus:
            truths = await reference_outputs(problems, sandbox, config.truth_cache, settings.sandbox.pool_size,
                                             bars.truth)
            for p in problems:
                truth = truths[p.id]
                if truth.error:
                    excluded[p.id] = truth.error
                else:
                    suites[p.id] = plus_suite(p, truth)
        jobs = []
        for p in problems:
            todo = tuple(i for i in range(config.n) if (p.id, i) not in existing)
            if p.id not in excluded and todo:
                suite, limits = suites[p.id]
                jobs.append(Job(p, todo, suite, limits))
        sampling = Sampling(config.sampling_temperature, config.seed, config.plan_samples, config.plan_temperature)

        async def produce(chunk: Sequence[Job]) -> tuple[list[Pending], int]:
            if config.plan_samples:
                return await sample_with_plans(sampler, sandbox, chunk, sampling, settings.sandbox.limits)
            return await sample_code(sampler, chunk, sampling)

        writer = SampleWriter(out / SAMPLES)
        try:
            outcome = await run_jobs(chunks(jobs, sampler, max(1, config.plan_samples)), produce,
                                     concurrent=sampler.concurrent, sandbox=sandbox,
                                     workers=settings.sandbox.pool_size, writer=writer,
                                     on_sample=bars.samples(sum(len(j.indices) for j in jobs)))
        finally:
            writer.close()

    samples = read_samples(out)
    rows = problem_rows(problems, samples, config.n, config.ks, excluded)
    split = config.chosen_split
    dataset = dataset_text(config.bench, split, len(split_problems(config.bench, split)), len(problems))
    summary = EvalSummary(
        model=model, bench=config.bench, split=split, dataset=dataset, n=config.n, k=config.ks,
        temperature=config.sampling_temperature, plan_samples=config.plan_samples, excluded=excluded,
        generated=outcome.written, reused=sum(1 for p in problems for i in range(config.n) if (p.id, i) in existing),
        protocol=protocol(config.bench, dataset=dataset, split=split, n=config.n, k=config.ks,
                          temperature=config.sampling_temperature, chat=sampler.chat,
                          stops_at_code=getattr(sampler, "stops_at_code", False), plan_samples=config.plan_samples,
                          plan_temperature=config.plan_temperature, cpu_s=settings.sandbox.limits.cpu_s,
                          memory_mb=settings.sandbox.memory_mb),
        training_data=trained[0], training_overlap=trained[1],
        out=out, wall_s=time.perf_counter() - started, **summary_counts(rows, config.ks))
    write_lines(out / RESULTS, rows)
    write_json(out / SUMMARY, summary.model_dump(mode="json"))
    return summary


async def judge(bench: str, solutions: Mapping[str, str], sandbox: Sandbox, cache_dir: Path,
                limits: Limits | None = None) -> dict[str, ExecResult | None]:
    """Run given code (by problem id: "mbpp/2", "Mbpp/2" or "2") against a benchmark's hidden tests, as
    ``evaluate`` scores a sample: the plain benchmarks' own tests, or for the plus ones every base and
    plus input under EvalPlus's protocol. Used to check the solve graph's accepted answers with tests
    its agents never saw. None: the reference itself could not be run on the inputs (excluded)."""
    problems = load_problems(bench, list(solutions), split="all")  # any id it is given, whatever its split
    by_number = {k.rsplit("/", 1)[-1]: v for k, v in solutions.items()}
    suites: dict[str, tuple[TestSuite, Limits] | None] = {
        p.id: (p.tests, limits or Limits()) for p in problems if p.tests is not None}
    if problems and problems[0].plus:
        truths = await reference_outputs(problems, sandbox, cache_dir, 4, lambda total: lambda n: None)
        for p in problems:
            suites[p.id] = None if truths[p.id].error else plus_suite(p, truths[p.id])

    async def one(p: Problem) -> ExecResult | None:
        suite = suites.get(p.id)
        if suite is None:
            return None
        return await sandbox.run(by_number[p.id.rsplit("/", 1)[-1]], suite[0], suite[1])

    results = await asyncio.gather(*(one(p) for p in problems))
    return {p.id: r for p, r in zip(problems, results, strict=True)}


__all__ = ["EvalConfig", "EvalSummary", "aevaluate", "eval_config", "evaluate", "judge", "redact", "render"]
