"""`codestill eval`: pass@k of a model on HumanEval, MBPP, HumanEval+ or MBPP+, run in the sandbox.

    codestill eval --model openai:codestill-sim@http://127.0.0.1:8000/v1 --bench mbpp+ --n 10 --k 1,10 --out ev

Progress goes to stderr, the summary table (or ``--json``) to stdout. See training/evaluate.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codestill.cli._common import ConfigOpt, SetOpt, settings_from
from codestill.errors import ConfigError


def _ks(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        ks = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"--k {text!r}: expected whole numbers separated by commas, e.g. --k 1,10") from None
    if not ks:
        raise ConfigError("--k names no k; e.g. --k 1,10")
    return ks


def _ids(values: list[str] | None) -> tuple[str, ...]:
    return tuple(part for value in values or [] for part in value.replace(" ", ",").split(",") if part)


def eval_command(
    model: Annotated[str, typer.Option(help="openai:<model> or openai:<model>@<base_url> (any codestill.llm "
                                            "chat model), hf:<hub id or dir>, or a checkpoint directory.")],
    bench: Annotated[str, typer.Option(help="humaneval, humaneval+, mbpp or mbpp+.")],
    out: Annotated[Path, typer.Option(help="Output directory: config, samples (streamed), results, summary. "
                                           "Rerunning the same command resumes it.")],
    n: Annotated[int, typer.Option("--n", help="Samples per problem (greedy decoding when 1).")] = 1,
    k: Annotated[str | None, typer.Option("--k", help="pass@k to report, e.g. 1,10; default: those of 1, 10, "
                                                      "100 that are <= n.")] = None,
    split: Annotated[str | None, typer.Option(help="Which problems: test, validation, train, prompt or all (MBPP's "
                                                   "splits by task id). Default: mbpp test (the published "
                                                   "protocol, 257 problems); mbpp+ all (as EvalPlus publishes "
                                                   "it, 378; --split test keeps MBPP's test split, which a model "
                                                   "trained on MBPP train/validation data needs); humaneval and "
                                                   "humaneval+ all (they have no splits).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems (of the split, after --ids).")] = None,
    ids: Annotated[list[str] | None, typer.Option("--ids", help="Only these problems of the split (mbpp/11, "
                                                                "11, ...; comma-separated or repeated).")] = None,
    plan_samples: Annotated[int, typer.Option(help="CodePLAN plan sampling: plans (and code candidates) per "
                                                   "sample, chosen by the public test; 0 = off.")] = 0,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature; default 0 when n=1, "
                                                           "else 0.8.")] = None,
    plan_temperature: Annotated[float, typer.Option(help="Temperature of sampled plans.")] = 0.8,
    max_new_tokens: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = 768,
    batch_size: Annotated[int, typer.Option(help="Sequences a local model decodes at once.")] = 16,
    prompt_style: Annotated[str, typer.Option(help="auto, chat or base (auto: chat when the model has a chat "
                                                   "template).")] = "auto",
    engine: Annotated[str, typer.Option(help="auto, transformers or vllm, for local checkpoints (auto: vLLM "
                                              "when installed and a GPU is there).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seeds sampling.")] = 0,
    truth_cache: Annotated[Path, typer.Option(help="Where the plus benchmarks' reference outputs are "
                                                   "kept.")] = Path(".codestill/evalplus"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
) -> None:
    """Sample N solutions per problem, run them in the sandbox with the benchmark's tests, report pass@k."""
    from training.evaluate import eval_config, evaluate, render

    settings = settings_from(config, sets)
    cfg = eval_config({
        "model": model, "bench": bench, "out": out, "n": n, "k": _ks(k), "split": split, "limit": limit,
        "ids": _ids(ids),
        "plan_samples": plan_samples, "temperature": temperature, "plan_temperature": plan_temperature,
        "max_new_tokens": max_new_tokens, "batch_size": batch_size, "prompt_style": prompt_style,
        "engine": engine, "seed": seed, "truth_cache": truth_cache,
    })
    if model.startswith("hf:") or Path(model).expanduser().is_dir():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # per-file loading bars; the evaluation has its own
    summary = evaluate(cfg, settings, console=Console(stderr=True))
    if as_json:
        typer.echo(json.dumps(summary.model_dump(mode="json"), indent=2))
    else:
        render(summary, Console())
    if summary.incomplete:
        raise typer.Exit(1)
