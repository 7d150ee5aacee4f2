"""The chat factory and structured replies over real HTTP against `codestill sim`, every fault on.

Each fault kind, at rate 1 (every request), must end as a recorded failure within the client's
timeouts and retries; mixed faults at rate 0.4 must mostly recover. Nothing may hang.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from agents import PlanAnswer
from codestill.config import LLMConfig
from codestill.data import load_bank
from codestill.errors import CodestillError, LLMError, ModelCallError, ModelUnreachable, UnknownModel
from codestill.llm import check_model, make_chat_model
from codestill.schemas import Critique, ModuleSpec, Plan
from codestill.sim import FAULT_KINDS, SimConfig, serve_subprocess
from codestill.structured import Method, ask
from codestill.traces import SqliteTracer, TraceStore

# Short timeouts and few retries so every fault resolves in seconds.
FAST = LLMConfig(timeout_s=1.5, max_retries=2, max_concurrency=16)
CLI = str(Path(sys.executable).with_name("codestill"))


class Code(BaseModel):
    code: str
    explanation: str = ""


class Modules(BaseModel):
    modules: list[ModuleSpec]


def _all(coros):
    async def go():
        return await asyncio.gather(*coros)
    return asyncio.run(go())


def _messages(role: str, i: int = 0) -> list:
    problem = load_bank()[i]
    return [SystemMessage(f"You are the codestill {role}."), HumanMessage(problem.instruction)]


@pytest.fixture(scope="module")
def sim_url():
    with serve_subprocess(SimConfig(seed=1)) as url:
        yield url


def _spec(url: str) -> str:
    return f"openai:codestill-sim@{url}"


@pytest.mark.parametrize("method", ["tools", "json_schema", "prompt"])
def test_each_structured_method_gets_valid_records(sim_url, method: Method):
    model = make_chat_model(_spec(sim_url), FAST)
    plan, code, modules = _all([ask(model, _messages("planner"), Plan, method=method),
                                ask(model, _messages("coder"), Code, method=method),
                                ask(model, _messages("decomposer"), Modules, method=method)])
    assert plan.ok and plan.value.steps and plan.tries == 1, plan.error
    assert code.ok and compile(code.value.code, "<sim>", "exec")
    assert modules.ok and modules.value.modules[0].name == load_bank()[0].entry_point
    assert code.usage.calls == 1 and code.usage.completion_tokens > 0 and code.usage.latency_s > 0


def test_prose_server_without_tool_calling_is_parsed_tolerantly():
    with serve_subprocess(SimConfig(tools=False, seed=3)) as url:
        model = make_chat_model(_spec(url), FAST)
        replies = _all([ask(model, _messages(role, i), schema, method="tools")
                                                for i in range(4)
                        for role, schema in (("planner", PlanAnswer), ("coder", Code))])
    assert all(r.ok for r in replies), [r.error for r in replies if not r.ok]
    # the planner's prose is the plan's text form, a numbered list, read back step by step
    assert all(len(r.value.steps) > 1 for r in replies if isinstance(r.value, PlanAnswer))


def test_the_critic_follows_the_test_results(sim_url):
    model = make_chat_model(_spec(sim_url), FAST)
    feedback = "status: failed\ntests: 0/1 passed\n- assert f(1) == 2: failed: 3 != 2"
    msgs = [*_messages("critic"), HumanMessage(f"Code:\n```python\ndef f(x): return 3\n```\n{feedback}")]
    passed = [*_messages("critic"), HumanMessage("status: passed\ntests: 3/3 passed")]
    failing, ok = _all([ask(model, msgs, Critique), ask(model, passed, Critique)])
    assert failing.ok and failing.value.verdict == "repair" and "3 != 2" in " ".join(failing.value.issues)
    assert ok.ok and ok.value.verdict == "accept"


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_fault_kind_always_on_ends_as_a_recorded_failure(kind):
    with serve_subprocess(SimConfig(fault_rate=1.0, faults=(kind,), retry_after_ms=50, hang_s=30)) as url:
        model = make_chat_model(_spec(url), LLMConfig(timeout_s=1.0, max_retries=1))
        reply = asyncio.run(ask(model, _messages("planner"), Plan, repair_rounds=1))
    assert not reply.ok and reply.value is None and reply.error
    expected = {"429": "Error code: 429", "500": "Error code: 500", "hang": "timed out",
                "bad_json": "", "truncate": "cut off"}[kind]
    assert expected in reply.error
    if kind in ("bad_json", "truncate"):
        assert reply.tries == 2  # one repair round was tried


@pytest.mark.parametrize(("kind", "status", "timed_out"), [("500", 500, False), ("429", 429, False),
                                                          ("hang", None, True)])
def test_a_provider_error_leaves_the_model_as_a_codestill_error(kind, status, timed_out):
    """``llm.py`` is the one place that knows the provider's error classes: a call that fails after the
    client's retries raises ``ModelCallError`` (never an ``openai`` error) saying what the server said."""
    with serve_subprocess(SimConfig(fault_rate=1.0, faults=(kind,), retry_after_ms=50, hang_s=30)) as url:
        model = make_chat_model(_spec(url), LLMConfig(timeout_s=1.0, max_retries=0))
        with pytest.raises(ModelCallError) as failed:
            asyncio.run(model.ainvoke([HumanMessage("hello")]))
    assert (failed.value.status, failed.value.timed_out) == (status, timed_out)
    assert isinstance(failed.value, CodestillError) and not isinstance(failed.value, LLMError)
    assert "openai" not in type(failed.value).__module__


def test_mixed_faults_mostly_recover_and_the_rest_are_recorded(tmp_path):
    config = SimConfig(fault_rate=0.4, retry_after_ms=20, hang_s=30, seed=7)
    with serve_subprocess(config) as url, SqliteTracer(tmp_path / "t.sqlite") as tracer:
        model = make_chat_model(_spec(url), LLMConfig(timeout_s=1.0, max_retries=3, max_concurrency=16))
        replies = _all([ask(model, _messages("planner", i), Plan, repair_rounds=2, config={"callbacks": [tracer]})
                        for i in range(30)])
    assert all((r.value is None) != (r.error is None) for r in replies)
    assert sum(r.ok for r in replies) >= 24, [r.error for r in replies if not r.ok]
    runs = TraceStore(tmp_path / "t.sqlite").list_runs(limit=100)
    assert sum(r.llm_calls for r in runs) == sum(r.usage.calls for r in replies)


def test_unknown_model_and_unreachable_server_are_one_clear_error(sim_url):
    with pytest.raises(UnknownModel, match="codestill llm check"):
        asyncio.run(ask(make_chat_model(f"openai:gpt-9@{sim_url}", FAST), _messages("planner"), Plan))
    with pytest.raises(UnknownModel, match="it serves: codestill-sim"):
        asyncio.run(check_model(f"openai:gpt-9@{sim_url}", FAST))
    dead = "openai:m@http://127.0.0.1:9/v1"
    with pytest.raises(ModelUnreachable, match="does not answer"):
        asyncio.run(ask(make_chat_model(dead, LLMConfig(max_retries=0)), _messages("planner"), Plan))


def test_llm_check_cli(sim_url):
    done = subprocess.run([CLI, "llm", "check", _spec(sim_url)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ") and "serves codestill-sim" in done.stdout
    bad = subprocess.run([CLI, "llm", "check", f"openai:nope@{sim_url}"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "it serves: codestill-sim" in bad.stderr and "Traceback" not in bad.stderr
