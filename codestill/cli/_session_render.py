"""What a person sees of a solve session as it happens: one block per agent step, drawn with rich.

``Renderer.event`` takes what ``Session.advance`` streams: (namespace, mode, data). A node's whole
result comes in a "tasks" event; branches (one per plan, run at once) are told apart by their
namespace, ``branch:<task id>``, whose plan index the parent's "tasks" start event names. Code, test
suites and sandbox results arrive as artefact keys and are read back from the artefact store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table

from codestill.schemas import Critique, ExecResult, MemoryHit, Plan, Trajectory

_OUTCOME = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "error": "[red]![/]", "not_run": "[dim]-[/]"}
_VERDICT = {"accepted": "bold green", "rejected": "bold red", "failed": "bold yellow"}


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def code_block(code: str) -> Syntax:
    return Syntax(code.rstrip("\n") or "# (no code)", "python", line_numbers=False, word_wrap=True)


def print_plans(console: Console, plans: Iterable[Plan | dict[str, Any]], indent: str = "  ") -> None:
    for i, plan in enumerate(plans, 1):
        p = plan if isinstance(plan, Plan) else Plan.model_validate(plan)
        console.print(f"[bold]plan {i}[/]" + (" [dim](backward)[/]" if p.kind == "backward" else ""))
        for n, step in enumerate(p.steps, 1):
            console.print(f"{indent}{n}. {escape(step)}")
        if p.rationale.strip():
            console.print(f"{indent}[dim]rationale: {escape(_short(p.rationale))}[/]")


def hits_table(hits: Iterable[MemoryHit]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for column in ("score", "for spec", "module", "id"):
        table.add_column(column, justify="right" if column == "score" else "left",
                         overflow="fold", no_wrap=column in ("score", "id"))
    for h in hits:
        table.add_row(f"{h.score:.3f}", escape(h.spec_name), escape(_short(h.module.signature, 80)), h.module.id[:12])
    return table


class Renderer:
    """Prints each agent step of a running session. ``quiet``: print nothing (``--json``)."""

    def __init__(self, console: Console, artefacts: Any, *, quiet: bool = False) -> None:
        self.console = console
        self.artefacts = artefacts
        self.quiet = quiet
        self._branches: dict[str, tuple[int, int]] = {}  # "branch:<task id>" -> (plan number in its round
        # from 1, sample)
        self._round_branches: dict[int, int] = {}  # plan round -> branches started

    # ---- dispatch -----------------------------------------------------------------------------

    def event(self, ns: tuple[str, ...], mode: str, data: Any) -> None:
        if self.quiet or mode != "tasks" or not isinstance(data, dict):
            return
        if "result" not in data:  # a node starts: only a branch's start says which plan it runs
            if not ns and data.get("name") == "branch" and isinstance(data.get("input"), dict):
                # Numbered within its round, in the order the planner's plans were shown (Send order).
                # With solve.samples > 1 a plan's samples follow it, sample 0 first.
                plan_round, sample = data["input"].get("plan_round", 0), data["input"].get("sample", 0)
                if not sample:
                    self._round_branches[plan_round] = self._round_branches.get(plan_round, 0) + 1
                self._branches[f"branch:{data['id']}"] = (self._round_branches.get(plan_round, 1), sample)
            return
        if data.get("error") or data.get("interrupts"):
            return  # errors end the run (the caller reports them); interrupts are prompted for
        result = data.get("result") or {}
        if not isinstance(result, dict):
            return
        name = data.get("name", "")
        if ns:
            handler = getattr(self, f"_branch_{name}", None)
            if handler is not None:
                handler(self._label(ns), result)
        else:
            handler = getattr(self, f"_node_{name}", None)
            if handler is not None:
                handler(result)
        for failure in result.get("failures") or ():
            self.console.print(f"  [yellow]unreadable reply[/] {escape(_short(failure))}")

    def _label(self, ns: tuple[str, ...]) -> str:
        found = self._branches.get(ns[0])
        if found is None:
            return "[cyan]\\[branch][/]"
        number, sample = found
        return f"[cyan]\\[plan {number}" + (f", sample {sample + 1}" if sample else "") + "][/]"

    def _get(self, key: str | None) -> str | None:
        if not key:
            return None
        try:
            return self.artefacts.get(key)
        except KeyError:
            return None

    # ---- the parent graph ---------------------------------------------------------------------

    def _node_plan(self, r: dict[str, Any]) -> None:
        plans = r.get("plans") or []
        round_ = r.get("plan_round", 0)
        self.console.print(Rule(f"planner: {len(plans)} plan{'s' if len(plans) != 1 else ''}"
                                + (f" (replan {round_})" if round_ else ""), align="left"))
        print_plans(self.console, plans)

    def _node_review_plans(self, r: dict[str, Any]) -> None:
        if r.get("plans"):
            self.console.print("[bold]you edited the plan[/]; going on with:")
            print_plans(self.console, r["plans"])
        elif "round_plans" in r:
            self.console.print("[bold]you asked for new plans[/]"
                               + (f": {escape(_short(r['plan_feedback']))}" if r.get("plan_feedback") else ""))

    def _node_branch(self, r: dict[str, Any]) -> None:
        return  # its nodes were shown as they ran

    def _node_select(self, r: dict[str, Any]) -> None:
        verdict, reason, chosen = r.get("verdict"), r.get("reason", ""), r.get("chosen")
        if verdict == "failed" and reason == "replan":
            route = "[yellow]replan[/]: every plan failed"
        elif verdict == "accepted":
            route = "[green]accepted[/]"
        else:
            route = f"[red]{escape(str(verdict))}[/] -> finish"
        which = ""
        if chosen is not None:
            which = f"best branch: {chosen.passed}/{chosen.total} tests, {chosen.repairs} repairs: "
        self.console.print(Rule("select", align="left"))
        self.console.print(f"{which}{route}" + (f"  [dim]({escape(_short(reason))})[/]" if reason != "replan" else ""))

    def _node_confirm(self, r: dict[str, Any]) -> None:
        if r.get("verdict") == "rejected":
            self.console.print(f"[red]{escape(r.get('reason', 'rejected'))}[/]")

    def _node_backward(self, r: dict[str, Any]) -> None:
        if r.get("backward") is not None:
            self.console.print(Rule("planner: backward plan (from the verified code)", align="left"))
            print_plans(self.console, [r["backward"]])

    def _node_explain(self, r: dict[str, Any]) -> None:
        if r.get("explanation"):
            self.console.print(Rule("coder: explanation of the accepted code", align="left"))
            self.console.print(escape(r["explanation"]))

    def _node_commit(self, r: dict[str, Any]) -> None:
        added, reused = r.get("added") or [], r.get("reused") or []
        if added or reused:
            self.console.print(f"memory: {len(added)} module{'s' if len(added) != 1 else ''} added, "
                               f"{len(reused)} reused")

    # ---- one branch (one plan) ----------------------------------------------------------------

    def _branch_draft(self, label: str, r: dict[str, Any]) -> None:
        code = self._get(r.get("draft_key"))
        if code is not None:
            self.console.print(f"{label} coder: a first draft ({len(code.splitlines())} lines) to decompose")

    def _branch_decompose(self, label: str, r: dict[str, Any]) -> None:
        specs = r.get("specs") or []
        if "done" in r:
            self.console.print(f"{label} [red]stopped[/]: {escape(r['done'].reason)}")
            return
        self.console.print(f"{label} decomposer: {len(specs)} module spec{'s' if len(specs) != 1 else ''}")
        for s in specs:
            self.console.print(f"    {escape(s.signature)}" + (f"  [dim]{escape(_short(s.description, 100))}[/]"
                                                               if s.description else ""))

    def _branch_retrieve(self, label: str, r: dict[str, Any]) -> None:
        if "branch_hits" not in r:
            return
        hits = r["branch_hits"]
        if not hits:
            self.console.print(f"{label} memory: no verified module close enough")
            return
        self.console.print(f"{label} memory: {len(hits)} verified module{'s' if len(hits) != 1 else ''} to reuse")
        self.console.print(hits_table(hits))

    def _branch_code(self, label: str, r: dict[str, Any]) -> None:
        if "done" in r:
            self.console.print(f"{label} [red]stopped[/]: {escape(r['done'].reason)}")
            return
        code = self._get(r.get("code_key"))
        if code is None:
            self.console.print(f"{label} coder: [yellow]no code could be read from the reply[/]")
            return
        self.console.print(f"{label} coder:")
        self.console.print(code_block(code))

    def _branch_test(self, label: str, r: dict[str, Any]) -> None:
        if "result_key" not in r:
            return
        result_json = self._get(r.get("result_key"))
        if result_json is None:
            self.console.print(f"{label} sandbox: nothing to run (no code)")
            return
        if r.get("tests_key"):
            self.console.print(f"{label} tester: wrote the tests")
        self._result(label, "sandbox", ExecResult.model_validate_json(result_json), each=True)
        hidden = self._get(r.get("hidden_result_key"))
        if hidden is not None:
            self._result(label, "sandbox (held-back tests)", ExecResult.model_validate_json(hidden), each=False)

    def _result(self, label: str, what: str, res: ExecResult, *, each: bool) -> None:
        style = "green" if res.passed else "red"
        line = f"{label} {what}: [{style}]{res.status}[/], {res.n_passed}/{len(res.tests)} tests passed"
        if res.wall_s:
            line += f" [dim]({res.wall_s:.2f} s)[/]"
        self.console.print(line)
        if res.message and not res.passed:
            self.console.print(f"    [dim]{escape(_short(res.message))}[/]")
        if each:
            for t in res.tests:
                msg = f"  [dim]{escape(_short(t.message, 120))}[/]" if t.message and t.outcome != "passed" else ""
                self.console.print(f"    {_OUTCOME.get(t.outcome, '?')} {escape(_short(t.name, 100))}{msg}")

    def _branch_critique(self, label: str, r: dict[str, Any]) -> None:
        c: Critique | None = r.get("critique")
        if c is None:
            return
        style = {"accept": "green", "repair": "yellow", "replan": "yellow", "reject": "red"}[c.verdict]
        done = r.get("done")
        if done is not None:
            route = {"accepted": "accepted", "rejected": "rejected", "replan": "asks for a new plan"}[done.outcome]
        elif r.get("test_feedback"):
            route = f"the tester writes the tests again (round {r.get('test_rounds', '?')})"
        else:
            route = f"the coder repairs it (repair {r.get('repairs', '?')})"
        self.console.print(f"{label} critic: [{style}]{c.verdict}[/] -> {route}")
        for issue in c.issues:
            self.console.print(f"    - {escape(_short(issue))}")
        if c.suggestion and c.verdict != "accept":
            self.console.print(f"    [dim]suggestion: {escape(_short(c.suggestion))}[/]")

    def _branch_finish(self, label: str, r: dict[str, Any]) -> None:
        for b in r.get("branches") or ():
            style = "green" if b.outcome == "accepted" else ("yellow" if b.outcome == "replan" else "red")
            self.console.print(f"{label} ended: [{style}]{b.outcome}[/] ({b.passed}/{b.total} tests, "
                               f"{b.repairs} repairs)")


def print_result(console: Console, t: Trajectory, thread_id: str, traces: list[str]) -> None:
    """The end of a session: the final code, the verdict with its reason, the thread and trace ids."""
    console.print(Rule("result", align="left"))
    if t.final_code:
        console.print(code_block(t.final_code))
    style = _VERDICT.get(t.verdict, "bold")
    console.print(f"verdict: [{style}]{t.verdict}[/] - {escape(t.reason)}")
    u = t.usage
    console.print(f"[dim]{u.calls} model calls, {u.prompt_tokens + u.completion_tokens} tokens, "
                  f"{t.duration_s:.1f} s of work, {len(t.attempts)} attempts[/]")
    console.print(f"thread {thread_id}  (codestill solve --thread {thread_id} shows it again)")
    if traces:
        console.print(f"trace {traces[-1]}  (codestill traces show {traces[-1]})"
                      + (f"  [dim]earlier parts of this session: {', '.join(traces[:-1])}[/]"
                         if len(traces) > 1 else ""))
