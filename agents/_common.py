"""What every agent shares: the task as the prompts show it, the plan as text, and the one call.

The instruction is always quoted verbatim (the simulated teacher, and a reader of the traces, find
the problem by it). The task's own tests are shown as examples only when they are not hidden, and
in an untagged fence: a ```python block in a prompt means "a solution" to the sim's planner and
decomposer, and tests are not one.
"""

from __future__ import annotations

import hashlib
import random

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from agents._prompts import fenced, prompt
from codestill.schemas import Plan, Task, TestSuite
from codestill.structured import Method, Reply, T, ask, text_form


def keyed_random(key: str) -> random.Random:
    """A random generator seeded by ``key`` (Python's hash() is salted per process, sha256 is not): the
    same key makes the same draws in every run, so a rerun or a resume repeats its choices."""
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def is_program(task: Task) -> bool:
    """The task asks for a program (a script reading stdin and printing its answer), not a function:
    SelfCodeAlign's "program" category, or a task whose given tests are stdin/stdout cases. The one
    place that decides: the coder's rules, the tester's reply form, the critic's note and the gates
    all follow it."""
    return ((task.origin is not None and task.origin.category == "program")
            or (task.tests is not None and task.tests.kind == "io"))


def visible_tests(task: Task) -> TestSuite | None:
    """The task's tests when the agents may see them, else None (none given, or hidden)."""
    return task.tests if task.tests is not None and not task.hidden_tests else None


def suite_text(suite: TestSuite) -> str:
    """Test code (or stdin/stdout cases) as plain text, saying how a ``check`` suite is run."""
    if suite.kind == "io":
        return "\n\n".join(f"input:\n{c.input}\nexpected output:\n{c.output}" for c in suite.cases)
    code = suite.code.strip()
    if suite.entry_point and "def check(" in code:
        code += f"\n\n# the harness then runs: check({suite.entry_point})"
    return code


def task_section(task: Task) -> str:
    """The instruction verbatim, the required entry point, and the visible tests as examples."""
    parts = [task.instruction.strip("\n")]
    if task.signature:
        parts.append(f"Required signature of the main function: `{task.signature}`")
    elif task.entry_point:
        parts.append(f"The main function must be named `{task.entry_point}`.")
    shown = visible_tests(task)
    if shown is not None and (shown.code.strip() or shown.cases):
        parts.append("The solution must pass these given tests:\n\n" + fenced(suite_text(shown), ""))
    return "\n\n".join(parts)


def plan_text(plan: Plan) -> str:
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(plan.steps, 1))
    return f"{steps}\n\nRationale: {plan.rationale}" if plan.rationale.strip() else steps


async def call(model: BaseChatModel, role: str, user: str, schema: type[T], *,
               config: RunnableConfig | None, method: Method, repair_rounds: int,
               max_tokens: int | None = None) -> Reply[T]:
    """One structured call: the role's system prompt (``prompts/<role>.md``), then ``user`` and, for an
    answer with a text form, how to write it (the last thing the model reads before answering)."""
    form = text_form(schema)
    if form is not None:
        user = f"{user}\n\n{form.text_format()}"
    messages = [SystemMessage(prompt(role)), HumanMessage(user)]
    return await ask(model, messages, schema, method=method, repair_rounds=repair_rounds, config=config,
                     role=role, max_tokens=max_tokens)

