"""A run as a Markdown transcript a person can read, or paste into a chat with a model when debugging:
the task, each node in order, every LLM call's prompt and reply, each sandbox run's program, tests
and results, the critic's verdicts, and the run's verdict and final code.

A system prompt is written out the first time it appears and referred back to afterwards: the
agents send the same long one on every call. Fences are longer than any backtick run inside them,
so code that holds Markdown fences cannot break the transcript.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from codestill.traces._models import Span, SpanTree

_TICKS = re.compile(r"`{3,}")


def fenced(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in _TICKS.findall(text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return orjson.dumps(content, option=orjson.OPT_INDENT_2).decode()


def _arguments(args: Any) -> list[str]:
    """Tool-call arguments: multi-line strings (code, tests) as blocks of their own, the rest as JSON."""
    if not isinstance(args, dict):
        return [fenced(_text(args), "json")]
    blocks = {k: v for k, v in args.items() if isinstance(v, str) and "\n" in v}
    rest = {k: v for k, v in args.items() if k not in blocks}
    out = [fenced(_text(rest), "json")] if rest else []
    for key, value in blocks.items():
        out += [f"`{key}`:", fenced(value, "python" if key in ("code", "tests") else "")]
    return out


def _duration(span: Span) -> str:
    return "unfinished" if span.duration_s is None else f"{span.duration_s:.2f} s"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.systems: dict[str, int] = {}  # system prompt -> the number of the call that showed it
        self.calls = 0

    def add(self, *lines: str) -> None:
        self.lines += [*lines, ""]

    def llm(self, span: Span) -> None:
        self.calls += 1
        tokens = f"{span.prompt_tokens or 0}+{span.completion_tokens or 0} tokens"
        self.add(f"**LLM call {self.calls}** ({span.model or 'model unknown'}, {tokens}, {_duration(span)})")
        inputs = _d(span.inputs)
        messages = (inputs.get("messages") or [[]])[0] or [{"role": "human", "content": p}
                                                           for p in inputs.get("prompts") or []]
        for m in messages:
            role, text = str(m.get("role")), _text(m.get("content"))
            if role == "system" and text in self.systems:
                self.add(f"*system:* the same system prompt as LLM call {self.systems[text]}")
                continue
            if role == "system":
                self.systems[text] = self.calls
            self.add(f"*{role}:*", fenced(text))
        for g in _d(span.outputs).get("generations") or []:
            g = _d(g)
            text = _text(g.get("content", g.get("text", "")))
            if text.strip():
                self.add("*reply:*", fenced(text))
            for call in g.get("tool_calls") or []:
                self.add(f"*reply (tool call `{_d(call).get('name')}`):*", *_arguments(_d(call).get("args")))
        if span.error:
            self.add(f"*failed:* {span.error.splitlines()[0]}")

    def sandbox(self, span: Span) -> None:
        inputs, result = _d(span.inputs), _d(span.outputs)
        tests = _d(inputs.get("tests"))
        self.add(f"**{span.name}** ({_duration(span)})", "*program:*", fenced(str(inputs.get("program", "")), "python"))
        if tests.get("code"):
            self.add("*tests:*", fenced(str(tests["code"]), "python"))
        outcomes = [_d(t) for t in result.get("tests") or []]
        passed = sum(t.get("outcome") == "passed" for t in outcomes)
        self.add(f"*result:* {result.get('status', span.status)}, {passed}/{len(outcomes)} tests passed"
                 + (f" ({result['message']})" if result.get("message") else ""))
        failing = [f"- `{t.get('name')}`: {t.get('outcome')} {t.get('message', '')}".rstrip()
                   for t in outcomes if t.get("outcome") != "passed"]
        if failing:
            self.add(*failing[:20])

    def node(self, span: Span, depth: int) -> None:
        inputs, outputs = _d(span.inputs), _d(span.outputs)
        title = span.name
        if span.name == "branch" and "plan_index" in inputs:
            title = f"branch r{inputs.get('plan_round', 0)}.p{inputs['plan_index']}"
        self.add(f"{'#' * min(depth, 6)} {title}")
        if span.name == "branch" and _d(inputs.get("plan")).get("steps"):
            self.add("*plan:*", *(f"{i}. {s}" for i, s in enumerate(inputs["plan"]["steps"], 1)))
        if span.name == "plan":
            for i, plan in enumerate(outputs.get("plans") or []):
                self.add(f"*plan {i}:*", *(f"{n}. {s}" for n, s in enumerate(_d(plan).get("steps") or [], 1)))
        critique = _d(outputs.get("critique"))
        if critique:
            issues = "; ".join(critique.get("issues") or []) or "no issues"
            self.add(f"*critique:* **{critique.get('verdict')}** — {issues}"
                     + (f" (suggestion: {critique['suggestion']})" if critique.get("suggestion") else ""))
        if span.name == "select" and outputs.get("verdict"):
            self.add(f"*selected:* {outputs['verdict']} — {outputs.get('reason', '')}")
        if span.error:
            self.add(f"*failed:* {span.error.splitlines()[0]}")


def _walk(w: _Writer, span: Span, depth: int) -> None:
    for child in span.children:
        if child.kind == "node":
            w.node(child, depth)
            _walk(w, child, depth + 1)
        elif child.kind == "llm":
            w.llm(child)
        elif child.name.startswith("sandbox") and isinstance(child.inputs, dict) and "program" in child.inputs:
            w.sandbox(child)
        else:
            _walk(w, child, depth)


def transcript(tree: SpanTree) -> Iterator[str]:
    """The run as Markdown lines."""
    root, w = tree.root, _Writer()
    task = _d(_d(root.inputs).get("task"))
    trajectory = _d(_d(root.outputs).get("trajectory"))
    tokens = sum(s.tokens for s in tree.walk())
    w.add(f"# {root.name} run {root.id[-8:]}" + (f" — {root.task_id}" if root.task_id else ""),
          f"run `{root.id}`, started {root.start.isoformat(timespec='seconds')}, {_duration(root)}, "
          f"status {root.status}, {tokens} tokens, {tree.spans} spans")
    if task:
        w.add("## Task", str(task.get("instruction", "")))
        if task.get("signature"):
            w.add(f"Signature: `{task['signature']}`")
        tests = _d(task.get("tests"))
        if tests.get("code"):
            hidden = " (held back from the agents)" if task.get("hidden_tests") else ""
            w.add(f"Given tests{hidden}:", fenced(str(tests["code"]), "python"))
    w.add("## Steps")
    _walk(w, root, 3)
    w.add("## Verdict")
    if trajectory:
        w.add(f"**{trajectory.get('verdict')}** — {trajectory.get('reason', '')}")
        if trajectory.get("final_code"):
            w.add("Final code:", fenced(str(trajectory["final_code"]), "python"))
    else:
        w.add(f"**{root.verdict or root.status}**" + (f" — {root.error.splitlines()[0]}" if root.error else ""))
    yield from w.lines
