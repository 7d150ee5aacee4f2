"""`codestill solve` and `codestill chat`: the agent team on one instruction (or several in a row),
streamed as it works, optionally pausing for a person to review the plans and the accepted code.

    codestill solve "Write a function to ..." [--interactive]      # prints the thread id to resume
    codestill solve --thread 3f2a9c1b0d4e --interactive            # go on where a session stopped
    codestill chat                                                 # one instruction per line

Sessions are checkpointed (``solve.checkpoints``), so a killed one resumes with ``--thread``; every
run of the graph is traced (``traces.path``; ``codestill traces show ID``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from codestill.cli._common import ConfigOpt, SetOpt, settings_from
from codestill.errors import CodestillError, ConfigError, LLMError
from codestill.run._session import AGENTS, SessionError, Step, model_specs, new_thread_id, task_id
from codestill.schemas import Task, TestSuite, Trajectory

if TYPE_CHECKING:
    from codestill.run._session import Session

MODEL_HINT = ("to point codestill at a model: export OPENAI_API_KEY for the OpenAI API, "
              "--model openai:NAME@http://HOST:8000/v1 for a vLLM (or any OpenAI-compatible) server, "
              "--model hf:MODEL for local transformers; or try `codestill sim serve --port 8000` with "
              "--model openai:codestill-sim@http://127.0.0.1:8000/v1 for an offline rehearsal")

ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Chat model of every agent: openai:NAME, openai:NAME@URL (vLLM, codestill sim) or hf:MODEL; "
                    "default llm.model (and solve.models per role).")]
PlannerOpt = Annotated[str | None, typer.Option("--model-planner", help="The planner's model (over --model).")]
DecomposerOpt = Annotated[str | None, typer.Option("--model-decomposer", help="The decomposer's model.")]
CoderOpt = Annotated[str | None, typer.Option("--model-coder", help="The coder's model.")]
TesterOpt = Annotated[str | None, typer.Option("--model-tester", help="The tester's model.")]
CriticOpt = Annotated[str | None, typer.Option("--model-critic", help="The critic's model.")]
PlansOpt = Annotated[int | None, typer.Option(
    "--plans", min=1, max=16, help="Plans sampled per task, one branch each (solve.plans); the planner then "
                                   "samples at solve.plan_temperature.")]
InteractiveOpt = Annotated[bool, typer.Option(
    "--interactive", "-i", help="Pause for you: accept, edit or regenerate the plans; accept or reject the code.")]


class _Paused(Exception):
    """The person left a prompt (Ctrl-C, end of input): the session stays resumable."""


def _hinted(e: LLMError, specs: dict[str, str], thread_id: str | None = None) -> LLMError:
    """The model error with how to point codestill at a model, on one line."""
    message = str(e)
    for spec in set(specs.values()):  # errors from inside the graph name the model, not its spec
        name = spec.partition(":")[2].partition("@")[0]
        if name and message.startswith(f"{name}: "):
            message = spec + message[len(name):]
            break
    kept = (f" (session {thread_id} is kept: resume it with `codestill solve --thread {thread_id}`)"
            if thread_id else "")
    return type(e)(" ".join(f"{message.rstrip('. ')}; {MODEL_HINT}{kept}".split()))


def _known_thread(checkpoints: Path, thread_id: str) -> None:
    """Fail fast, before the sandbox and the memory open, on a thread the checkpoint file lacks."""
    found = None
    if checkpoints.is_file():
        try:
            with closing(sqlite3.connect(f"file:{checkpoints}?mode=ro", uri=True)) as db:
                found = db.execute("SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (thread_id,)).fetchone()
        except sqlite3.Error as e:
            raise SessionError(f"cannot read the sessions file {checkpoints} ({e}); check solve.checkpoints") from None
    if found is None:
        raise _no_thread(checkpoints, thread_id)


def _no_thread(checkpoints: Path, thread_id: str) -> SessionError:
    return SessionError(f"no session {thread_id!r} in {checkpoints}; `codestill solve` prints a session's "
                        "thread id when it starts")


def _task(instruction: str, entry_point: str | None, tests: Path | None, hidden: bool) -> Task:
    if not instruction.strip():
        raise ConfigError("the instruction is empty; say what the function should do")
    if hidden and tests is None:
        raise ConfigError("--hidden-tests hides the tests of --tests FILE; give the file too")
    suite = None
    if tests is not None:
        try:
            code = tests.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--tests {tests}: cannot read it ({getattr(e, 'strerror', None) or e}); "
                              "give a Python file of asserts") from None
        if not code.strip():
            raise ConfigError(f"--tests {tests}: the file is empty; give a Python file of asserts")
        suite = TestSuite(code=code, entry_point=entry_point if "def check(" in code else None)
    return Task(id=task_id(instruction), instruction=instruction.strip(), entry_point=entry_point, tests=suite,
                hidden_tests=hidden)


class _Driver:
    """Runs threads of one open session on one event loop; prompts happen while the loop is idle."""

    def __init__(self, runner: asyncio.Runner, session: Session, console: Console, *, quiet: bool,
                 prompt_console: Console) -> None:
        from codestill.cli._session_render import Renderer

        self.runner, self.session, self.console = runner, session, console
        self.prompt_console = prompt_console
        self.quiet = quiet
        self.renderer = Renderer(console, session.deps.artefacts, quiet=quiet)

    def run(self, thread_id: str, graph_input: Any, task: Task | None) -> Trajectory:
        """Advance the thread until it ends, asking the person at every pause."""
        from langgraph.types import Command

        from codestill.cli._session_prompt import ask

        while True:
            try:
                step: Step = self.runner.run(self.session.advance(thread_id, graph_input, self.renderer.event, task))
            except LLMError as e:
                raise _hinted(e, dict(self.session.deps.model_names), thread_id) from None
            task = step.task or task
            if step.trajectory is not None:
                return step.trajectory
            if step.interrupt is None:  # cannot happen: advance runs until a pause or the end
                raise SessionError(f"session {thread_id} stopped without an end or a question; "
                                   f"resume it with `codestill solve --thread {thread_id}`")
            try:
                answer = ask(self.prompt_console, step.interrupt)
            except EOFError:
                raise _Paused() from None
            graph_input = Command(resume=answer)


def _open(runner: asyncio.Runner, settings: Any, specs: dict[str, str], interactive: bool) -> Session:
    from codestill.run._session import open_session

    try:
        return runner.run(open_session(settings, specs, interactive=interactive))
    except LLMError as e:
        raise _hinted(e, specs) from None


def _hangup_as_interrupt() -> None:
    """A closed terminal (SIGHUP) stops a session the way Ctrl-C does: its sandbox containers are removed
    and the session is kept, instead of the process dying on the spot."""
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGINT))


def _kept(console: Console, thread_id: str, interactive: bool) -> None:
    flag = " --interactive" if interactive else ""
    console.print(f"\nsession {thread_id} is kept: resume it with `codestill solve --thread {thread_id}{flag}`",
                  highlight=False)


def solve_command(
    instruction: Annotated[str | None, typer.Argument(help="What to write, in words (not with --thread).")] = None,
    entry_point: Annotated[str | None, typer.Option(help="Name of the function the tests call.")] = None,
    tests: Annotated[Path | None, typer.Option(help="A Python file of asserts the solution must pass.")] = None,
    hidden_tests: Annotated[bool, typer.Option(
        "--hidden-tests", help="Run the --tests file but never show it to the agents.")] = False,
    model: ModelOpt = None, model_planner: PlannerOpt = None, model_decomposer: DecomposerOpt = None,
    model_coder: CoderOpt = None, model_tester: TesterOpt = None, model_critic: CriticOpt = None,
    plans: PlansOpt = None, interactive: InteractiveOpt = False,
    thread: Annotated[str | None, typer.Option(help="Resume (or show) the session with this thread id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the Trajectory as JSON.")] = False,
    config: ConfigOpt = None, sets: SetOpt = None,
) -> None:
    """Solve one instruction with the agent team: plan, decompose, reuse memory, code, test, criticise.

    Exit status 0 when the solution is accepted, 1 when it is rejected or failed."""
    if thread is None and instruction is None:
        raise ConfigError("give an instruction, e.g. codestill solve \"Write a function to ...\", "
                          "or --thread ID to resume a session")
    if thread is not None and instruction is not None:
        raise ConfigError("--thread resumes a session with its own instruction; give one or the other")
    task = _task(instruction, entry_point, tests, hidden_tests) if instruction is not None else None
    settings = settings_from(config, sets, **{"solve.plans": plans})
    specs = model_specs(settings, model, {"planner": model_planner, "decomposer": model_decomposer,
                                          "coder": model_coder, "tester": model_tester, "critic": model_critic})
    console = Console(stderr=as_json, highlight=False)
    prompt_console = Console(stderr=True, highlight=False) if as_json else console
    thread_id = thread or new_thread_id()
    if thread is not None:
        _known_thread(settings.solve.checkpoints, thread)
    _hangup_as_interrupt()
    with asyncio.Runner() as runner:
        session = _open(runner, settings, specs, interactive)
        try:
            driver = _Driver(runner, session, console, quiet=as_json, prompt_console=prompt_console)
            trajectory = _solve(driver, task, thread_id, resume=thread is not None, interactive=interactive)
        except (_Paused, KeyboardInterrupt):
            _kept(prompt_console, thread_id, interactive)
            raise typer.Exit(130) from None
        finally:
            runner.run(session.aclose())
    if as_json:
        print(trajectory.model_dump_json(indent=2))
    else:
        from codestill.cli._session_render import print_result

        print_result(console, trajectory, thread_id, session.traces.get(thread_id, []))
    if trajectory.verdict != "accepted":
        raise typer.Exit(1)


def _solve(driver: _Driver, task: Task | None, thread_id: str, *, resume: bool, interactive: bool) -> Trajectory:
    session, console, quiet = driver.session, driver.console, driver.quiet
    if not resume:
        assert task is not None
        if not quiet:
            _header(console, session, task, thread_id, interactive)
        return driver.run(thread_id, {"task": task}, task)
    step = driver.runner.run(session.step_of(thread_id))
    if step is None:
        raise _no_thread(session.settings.solve.checkpoints, thread_id)
    if not quiet and step.task is not None:
        _header(console, session, step.task, thread_id, interactive, resumed=True)
    if step.trajectory is not None:
        return step.trajectory
    from langgraph.types import Command

    from codestill.cli._session_prompt import ask

    graph_input: Any = None
    if step.interrupt is not None:
        if interactive:
            try:
                graph_input = Command(resume=ask(driver.prompt_console, step.interrupt))
            except EOFError:
                raise _Paused() from None
        elif not quiet:
            what = "plans" if step.interrupt.get("kind") == "plans" else "accepted code"
            console.print(f"[dim]the session waits for a review of its {what}; without --interactive it "
                          "goes on as if you accepted[/]")
    elif not quiet:
        console.print("[dim]the session stopped mid-way; going on from its last checkpoint[/]")
    return driver.run(thread_id, graph_input, step.task)


def _header(console: Console, session: Session, task: Task, thread_id: str, interactive: bool,
            resumed: bool = False) -> None:
    flag = " --interactive" if interactive else ""
    if resumed:
        console.print(f"resuming session {thread_id}")
    else:
        console.print(f"session {thread_id}  (resume with --thread {thread_id}: "
                      f"codestill solve --thread {thread_id}{flag})")
    console.print(f"[bold]task[/] {escape(task.id)}: {escape(task.instruction)}")
    console.print(f"[dim]models: {escape(session.deps.model_label())}[/]")


# ---- codestill chat ---------------------------------------------------------------------------

_CHAT_HELP = ("one instruction per line; /trace: the last task's trace, /hits: its memory hits, "
              "/retry: solve it again, /quit (or end of input): leave")


class _Chat:
    def __init__(self, runner: asyncio.Runner, session: Session, console: Console, interactive: bool) -> None:
        self.runner, self.session, self.console, self.interactive = runner, session, console, interactive
        self.driver = _Driver(runner, session, console, quiet=False, prompt_console=console)
        self.instruction: str | None = None
        self.thread: str | None = None
        self.trajectory: Trajectory | None = None
        self.commands: dict[str, Callable[[], None]] = {
            "/trace": self.trace, "/hits": self.hits, "/retry": self.retry, "/help": self.help}

    def loop(self) -> None:
        self.console.print(f"codestill chat: {_CHAT_HELP}")
        while True:
            try:
                line = self.console.input("solve> ").strip()
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return
            if not line:
                continue
            if line.startswith("/"):
                word = line.split()[0].lower()
                if word in ("/quit", "/exit", "/q"):
                    return
                self.commands.get(word, self.help)()
                continue
            self.solve(line)

    def help(self) -> None:
        self.console.print(_CHAT_HELP)

    def solve(self, instruction: str) -> None:
        self.instruction = instruction
        self.thread = thread_id = new_thread_id()
        task = Task(id=task_id(instruction), instruction=instruction)
        _header(self.console, self.session, task, thread_id, self.interactive)
        try:
            self.trajectory = self.driver.run(thread_id, {"task": task}, task)
        except (_Paused, KeyboardInterrupt):
            _kept(self.console, thread_id, self.interactive)
            return
        except CodestillError as e:
            self.console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            return
        from codestill.cli._session_render import print_result

        print_result(self.console, self.trajectory, thread_id, self.session.traces.get(thread_id, []))

    def retry(self) -> None:
        if self.instruction is None:
            self.console.print("nothing to retry yet: type an instruction")
            return
        self.solve(self.instruction)

    def hits(self) -> None:
        from codestill.cli._session_render import hits_table

        if self.trajectory is None:
            self.console.print("no finished task yet")
        elif not self.trajectory.memory_hits:
            self.console.print("the last task found no verified module in the memory")
        else:
            self.console.print(hits_table(self.trajectory.memory_hits))

    def trace(self) -> None:
        traces = self.session.traces.get(self.thread or "", [])
        if not traces:
            self.console.print("no task traced yet")
            return
        if self.session.tracer is None:
            self.console.print("tracing is off (traces.enabled = false)")
            return
        from codestill.traces import TraceStore

        self.session.tracer.flush(10.0)
        with TraceStore(self.session.settings.traces.path) as store:
            trees = [store.tree(t, payloads=False) for t in traces]
        for tree in trees:
            _print_trace(self.console, tree)
        self.console.print(f"[dim]codestill traces show {traces[-1]} prints the whole tree[/]")


def _print_trace(console: Console, tree: Any) -> None:
    """One trace in a few lines: totals, then runs, model calls, tokens and time per graph node."""
    root = tree.root
    spans = list(tree.walk())
    llm = [s for s in spans if s.kind == "llm"]
    console.print(f"trace {root.trace_id}: {root.status}, {tree.spans} spans, {len(llm)} model calls, "
                  f"{sum(s.tokens for s in llm)} tokens" + (f", {root.duration_s:.2f} s" if root.duration_s else ""))
    rows: dict[str, list[float]] = {}
    for s in spans:
        if s.kind == "node":
            row = rows.setdefault(s.name, [0, 0, 0, 0.0])
            row[0] += 1
            row[3] += s.duration_s or 0.0
        elif s.kind == "llm" and s.node:
            row = rows.setdefault(s.node, [0, 0, 0, 0.0])
            row[1] += 1
            row[2] += s.tokens
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for column in ("node", "runs", "model calls", "tokens", "time"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for name, (runs, calls, tokens, seconds) in rows.items():
        table.add_row(escape(name), str(int(runs)), str(int(calls)), str(int(tokens)), f"{seconds:.2f} s")
    console.print(table)


def chat_command(
    model: ModelOpt = None, model_planner: PlannerOpt = None, model_decomposer: DecomposerOpt = None,
    model_coder: CoderOpt = None, model_tester: TesterOpt = None, model_critic: CriticOpt = None,
    plans: PlansOpt = None, interactive: InteractiveOpt = False, config: ConfigOpt = None, sets: SetOpt = None,
) -> None:
    """Solve several instructions in a row, sharing the memory, the sandbox pool and the trace store."""
    settings = settings_from(config, sets, **{"solve.plans": plans})
    specs = model_specs(settings, model, {"planner": model_planner, "decomposer": model_decomposer,
                                          "coder": model_coder, "tester": model_tester, "critic": model_critic})
    console = Console(highlight=False)
    _hangup_as_interrupt()
    with asyncio.Runner() as runner:
        session = _open(runner, settings, specs, interactive)
        try:
            _Chat(runner, session, console, interactive).loop()
        finally:
            runner.run(session.aclose())


__all__ = ["AGENTS", "chat_command", "solve_command"]
