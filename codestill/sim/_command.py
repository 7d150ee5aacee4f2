"""`codestill sim serve`: run the simulated teacher, an OpenAI-compatible server that is not a language model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codestill.errors import CodestillError
from codestill.sim import FAULT_KINDS, Server, SimConfig, Teacher, run_server
from codestill.sim._config import FaultKind

app = typer.Typer(no_args_is_help=True, help="The simulated teacher: an OpenAI-compatible server that answers "
                  "from MBPP / HumanEval reference solutions (a simulator, not a language model).")


def _faults(text: str) -> tuple[FaultKind, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    known: dict[str, FaultKind] = {k: k for k in FAULT_KINDS}
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise typer.BadParameter(f"fault kinds are {','.join(FAULT_KINDS)}; got {text!r}")
    return tuple(known[k] for k in kinds)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one (printed on the first line).")] = 8000,
    seed: Annotated[int, typer.Option(help="Seeds every choice the simulator makes.")] = 0,
    latency: Annotated[float, typer.Option(help="Seconds to the first token.")] = 0.0,
    tokens_per_s: Annotated[float, typer.Option(help="Pace after the first token; 0 = instant.")] = 0.0,
    bug_rate: Annotated[float, typer.Option(help="Share of fresh coder answers with a planted bug.")] = 0.0,
    fault_rate: Annotated[float, typer.Option(help="Share of chat requests that get an injected fault.")] = 0.0,
    faults: Annotated[str, typer.Option(help="Fault kinds to draw from, comma-separated.")] = ",".join(FAULT_KINDS),
    hang_s: Annotated[float, typer.Option(help="Longest a 'hang' fault holds a request.")] = 600.0,
    retry_after_ms: Annotated[int, typer.Option(help="What a 429 fault asks the client to wait.")] = 200,
    model: Annotated[str, typer.Option(help="The model id served.")] = "codestill-sim",
    no_tools: Annotated[bool, typer.Option("--no-tools", help="Ignore tools / response_format; answer in prose "
                                          "(the same as --server transformers-serve).")] = False,
    server: Annotated[Server, typer.Option(
        help="Act as this server in how it treats tools and response_format: sim, openai, vllm honour both; "
             "vllm-no-tool-parser refuses tool_choice (HTTP 400) but honours json_schema; transformers-serve "
             "ignores both and answers in prose.")] = "sim",
    no_strong_tests: Annotated[bool, typer.Option(
        "--no-strong-tests", help="The tester gives the task's own tests only, no edge cases or variants.")] = False,
    knowledge: Annotated[list[Path] | None, typer.Option(
        help="A seed JSONL (codestill seeds mine) whose functions the simulator knows as problems; repeatable.")]
    = None,
    evol_fail_rate: Annotated[float, typer.Option(help="Share of evolutions that fail (as real teachers' do).")]
    = 0.0,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Keep the tester's worked-out tests in this folder between runs.")] = None,
    teacher: Annotated[Teacher, typer.Option(
        help="default: an answer key; realistic: a teacher that errs as real ones do (the rates below).")]
    = "default",
    test_flaw_rate: Annotated[float | None, typer.Option(
        help="Share of fresh tester answers that are flawed (realistic: 0.4).")] = None,
    code_flaw_rate: Annotated[float | None, typer.Option(
        help="Share of fresh coder answers that are flawed, besides --bug-rate (realistic: 0.3).")] = None,
    bend_rate: Annotated[float | None, typer.Option(
        help="Share of repairs that bend the code to the failing asserts shown (realistic: 0.5).")] = None,
    critic_flaw_rate: Annotated[float | None, typer.Option(
        help="Share of critic replies that are wrong, unreadable or off the reject taxonomy (realistic: 0.25).")]
    = None,
    plan_flaw_rate: Annotated[float | None, typer.Option(help="Share of vague plans (realistic: 0.2).")] = None,
    stubborn_rate: Annotated[float | None, typer.Option(
        help="Share of testers asked again over a dispute that repeat their tests verbatim (realistic: 0.25).")]
    = None,
) -> None:
    """Serve the OpenAI chat-completions protocol at http://HOST:PORT/v1 until interrupted."""
    try:
        config = SimConfig(seed=seed, latency_s=latency, tokens_per_s=tokens_per_s, bug_rate=bug_rate,
                           fault_rate=fault_rate, faults=_faults(faults), hang_s=hang_s,
                           retry_after_ms=retry_after_ms, model=model, tools=not no_tools, server=server,
                           strong_tests=not no_strong_tests, evol_fail_rate=evol_fail_rate,
                           knowledge=tuple(str(p) for p in knowledge or ()),
                           cache_dir=str(cache_dir) if cache_dir else None, teacher=teacher,
                           test_flaw_rate=test_flaw_rate, code_flaw_rate=code_flaw_rate, bend_rate=bend_rate,
                           critic_flaw_rate=critic_flaw_rate, plan_flaw_rate=plan_flaw_rate,
                           stubborn_rate=stubborn_rate)
    except ValueError as e:
        raise CodestillError(f"invalid simulator setting: {e}") from None
    for path in config.knowledge:
        if not Path(path).is_file():
            raise CodestillError(f"no knowledge file at {path}: give a seed JSONL written by `codestill seeds mine`")
    run_server(config, host=host, port=port)
