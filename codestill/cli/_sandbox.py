"""`codestill sandbox ...`: set up, build, check and use the Docker execution sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from codestill.config import SandboxConfig
from codestill.errors import CodestillError
from codestill.schemas import IOCase, Limits, TestSuite
from tools.sandbox import (
    DockerSandbox,
    build_image,
    connect,
    ensure_engine,
    image_present,
    install_packages,
    reap_orphans,
)

app = typer.Typer(no_args_is_help=True, help="The Docker execution sandbox.")
_out = Console()


def _say(text: str) -> None:
    _out.print(f"[dim]sandbox:[/] {text}", highlight=False)


BaseImage = Annotated[str | None, typer.Option(
    help="Build from this registry image (e.g. python:3.11-slim) instead of debootstrap.")]


@app.command()
def setup(rebuild: Annotated[bool, typer.Option(help="Build the image even if present.")] = False,
          base_image: BaseImage = None) -> None:
    """Install and start a Docker engine if none answers, and build the image if missing (idempotent)."""
    config = SandboxConfig(base_image=base_image)
    client = ensure_engine(config, _say)
    if rebuild or not image_present(client, config):
        if not config.base_image:
            install_packages(_say, needed=("debootstrap",))
        build_image(client, config, _say)
    _out.print(_check_line(config))


@app.command()
def build(base_image: BaseImage = None) -> None:
    """Build the sandbox image: debootstrap a Debian rootfs with python3 and `docker import` it."""
    config = SandboxConfig(base_image=base_image)
    build_image(connect(config), config, _say)
    _out.print(f"built {config.image}")


def _check_line(config: SandboxConfig) -> str:
    client = connect(config)
    version = client.version().get("Version", "?")
    if not image_present(client, config):
        raise CodestillError(
            f"sandbox not ready: engine {version} answers, but image {config.image} is missing; "
            "run `codestill sandbox build`."
        )
    return f"sandbox ready: Docker engine {version}, image {config.image}"


@app.command()
def check() -> None:
    """Say in one line whether the engine and image are usable and, if not, what to run."""
    _out.print(_check_line(SandboxConfig()), highlight=False)


@app.command()
def run(
    program: Annotated[Path, typer.Argument(help="The Python program to test.", exists=True, dir_okay=False)],
    tests: Annotated[Path | None, typer.Option(help="Assert-style test code.", exists=True)] = None,
    io: Annotated[Path | None, typer.Option(help="JSONL of {input, output} stdin/stdout cases.", exists=True)] = None,
    entry_point: Annotated[str | None, typer.Option(help="HumanEval: call check(ENTRY_POINT).")] = None,
    cpu: Annotated[float, typer.Option(help="CPU seconds allowed.")] = 4.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ExecResult as JSON.")] = False,
) -> None:
    """Run PROGRAM against its tests in the sandbox and print the per-test result."""
    if (tests is None) == (io is None):
        raise typer.BadParameter("give exactly one of --tests or --io")
    if io is not None:
        suite = TestSuite(kind="io", cases=tuple(_read_cases(io)))
    else:
        assert tests is not None  # exactly one of the two (above)
        suite = TestSuite(code=tests.read_text(encoding="utf-8", errors="replace"), entry_point=entry_point)
    result = asyncio.run(_run_once(program.read_bytes(), suite, Limits(cpu_s=cpu)))
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        table = Table("test", "outcome", "message", title=f"{program.name}: {result.status}")
        for t in result.tests:
            style = {"passed": "green", "failed": "red", "error": "red"}.get(t.outcome, "yellow")
            table.add_row(t.name, f"[{style}]{t.outcome}[/]", t.message[:200])
        _out.print(table)
        _out.print(f"[bold]{result.status}[/] {result.message}  (cpu {result.cpu_s:.3f} s, wall {result.wall_s:.3f} s)",
                   highlight=False)
    raise typer.Exit(0 if result.passed else 1)


def _read_cases(path: Path) -> list[IOCase]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                cases.append(IOCase.model_validate(json.loads(line)))
            except ValueError as e:
                raise CodestillError(f"{path}:{n}: not an {{input, output}} JSON object ({e}).") from None
    return cases


async def _run_once(program: bytes, suite: TestSuite, limits: Limits):
    config = SandboxConfig(pool_size=1)
    async with DockerSandbox(config) as sandbox:
        return await sandbox.run(program, suite, limits)


@app.command()
def prune(everything: Annotated[bool, typer.Option(
        "--all", help="Also remove the containers of running processes and of other machines.")] = False) -> None:
    """Remove sandbox containers whose owner process is gone (every pool start does this too)."""
    gone = reap_orphans(connect(SandboxConfig()), everything=everything)
    _out.print(f"removed {gone} sandbox container(s)")
