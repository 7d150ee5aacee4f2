"""``llm.structured=auto`` against each server profile of the simulator, over real HTTP.

Real servers differ in what they honour (the OpenAI API and vLLM with a tool-call parser: tool calls
and JSON schemas; vLLM without one: a 400 for tool_choice, JSON schemas honoured; ``transformers
serve``: neither), so the probe must land on the method each one really supports, the 400 must be a
real HTTP 400 as an OpenAI client sees it, ``codestill llm check`` must say which setting to use, and an
opener must ask each endpoint once, not once per role or session.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai
import pytest
from typer.testing import CliRunner

from codestill._capability import Capability, StructuredProbes, detect_structured
from codestill.cli import app
from codestill.config import LLMConfig
from codestill.llm import aclose, make_chat_model
from codestill.records import read_jsonl, write_jsonl
from codestill.schemas import Seed, Task
from codestill.sim import SimConfig, serve_subprocess

FAST = LLMConfig(timeout_s=10, max_retries=0)
MODEL = "codestill-sim"
EXPECTED = {"sim": "tools", "openai": "tools", "vllm": "tools", "vllm-no-tool-parser": "json_schema",
            "transformers-serve": "prompt"}
TOOL = {"type": "function", "function": {"name": "Answer", "parameters": {
    "type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}}}


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[[str], str]]:
    """serve(profile) -> base URL of a simulator acting as that server (one per profile, kept for the module)."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        def start(profile: str) -> str:
            if profile not in urls:
                urls[profile] = stack.enter_context(serve_subprocess(SimConfig(server=profile)))  # type: ignore[arg-type]
            return urls[profile]

        yield start


def _spec(url: str) -> str:
    return f"openai:{MODEL}@{url}"


def _served(url: str) -> int:
    """How many chat requests the simulator at ``url`` has received (its /health says)."""
    return int(httpx.get(url.removesuffix("/v1") + "/health").json()["chat_requests"])


async def _detect(spec: str) -> Capability:
    model = make_chat_model(spec, FAST)
    try:
        return await detect_structured(model, spec)
    finally:
        await aclose(model)


@pytest.mark.parametrize("profile", list(EXPECTED))
def test_the_probe_finds_the_method_each_server_really_supports(serve, profile: str) -> None:
    found = asyncio.run(_detect(_spec(serve(profile))))
    assert found.method == EXPECTED[profile], found.notes
    # one note per method tried, the refusal quoted as the server said it
    tried = {"tools": 1, "json_schema": 2, "prompt": 3}[found.method]
    assert len(found.notes) == tried and found.notes[-1].endswith(("works", "tolerantly)"))
    if profile == "vllm-no-tool-parser":
        assert found.notes[0].startswith("named tool choice: refused (400:") and "--tool-call-parser" in found.notes[0]


def test_a_server_without_a_tool_parser_refuses_tool_choice_with_a_real_400(serve) -> None:
    client = openai.OpenAI(base_url=serve("vllm-no-tool-parser"), api_key="sk-test", max_retries=0)
    msgs = [{"role": "user", "content": "What is 2+3?"}]
    for choice in ({"type": "function", "function": {"name": "Answer"}}, "required", "auto", None):
        extra = {} if choice is None else {"tool_choice": choice}  # absent means "auto", as in vLLM
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=MODEL, messages=msgs, tools=[TOOL], **extra)  # type: ignore[arg-type]
        assert refused.value.status_code == 400
        assert "requires --enable-auto-tool-choice and --tool-call-parser to be set" in refused.value.message
    # vLLM's own words for "auto"; tool_choice "none" and a JSON schema are answered
    assert '"auto" tool choice requires' in str(refused.value)
    plain = client.chat.completions.create(model=MODEL, messages=msgs, tools=[TOOL], tool_choice="none")  # type: ignore[list-item]
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].message.content
    fmt = {"type": "json_schema", "json_schema": {"name": "Answer", "schema": TOOL["function"]["parameters"]}}
    schema_reply = client.chat.completions.create(model=MODEL, messages=msgs, response_format=fmt)  # type: ignore[arg-type]
    assert isinstance(json.loads(schema_reply.choices[0].message.content or "")["answer"], int)


@pytest.mark.parametrize("profile", ["vllm-no-tool-parser", "transformers-serve", "sim"])
def test_llm_check_names_the_method_to_use(serve, profile: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no settings file of the checkout's
    done = CliRunner().invoke(app, ["llm", "check", _spec(serve(profile))])
    assert done.exit_code == 0, done.output
    out = done.output
    assert f"use: llm.structured={EXPECTED[profile]} (auto picks it)" in out
    assert "reply: " in out and "finish_reason stop" in out and "completion tokens" in out
    if profile == "vllm-no-tool-parser":
        assert "named tool choice: refused (400:" in out and "json_schema: works" in out


def test_llm_check_warns_when_the_set_method_fails_there(serve, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["llm", "check", _spec(serve("transformers-serve")),
                                    "--set", "llm.structured=json_schema"])
    assert done.exit_code == 0, done.output
    assert "llm.structured=json_schema is set" in done.output and "set it to prompt or auto" in done.output


def test_an_opener_probes_each_endpoint_once(serve) -> None:
    """Five roles on one endpoint, two clients of it (planner's temperature differs), two sessions: one probe."""
    url = serve("vllm-no-tool-parser")
    spec = _spec(url)

    async def go() -> list[str]:
        probes = StructuredProbes()
        models = [make_chat_model(spec, FAST), make_chat_model(spec, FAST.model_copy(update={"temperature": 0.9}))]
        try:
            roles = [(spec, models[i % 2]) for i in range(5)]
            return [await probes.resolve("auto", roles), await probes.resolve("auto", roles),
                    await probes.resolve("tools", roles)]  # a concrete setting is taken as it is, unprobed
        finally:
            for m in models:
                await aclose(m)

    before = _served(url)
    assert asyncio.run(go()) == ["json_schema", "json_schema", "tools"]
    assert _served(url) - before == 2  # the refused tool call and the JSON schema, once


def test_roles_on_different_endpoints_share_the_best_method_all_of_them_honour(serve) -> None:
    async def resolve(*profiles: str) -> str:
        specs = [_spec(serve(p)) for p in profiles]
        models = [make_chat_model(s, FAST) for s in specs]
        try:
            return await StructuredProbes().resolve("auto", zip(specs, models, strict=True))
        finally:
            for m in models:
                await aclose(m)

    # the tool-calling vLLM is asked about JSON schemas too, since the other one takes only those
    assert asyncio.run(resolve("vllm", "vllm-no-tool-parser")) == "json_schema"
    assert asyncio.run(resolve("sim", "transformers-serve")) == "prompt"
    assert asyncio.run(resolve("openai", "vllm")) == "tools"


def test_a_local_model_gets_prompt_without_a_call() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    found = asyncio.run(detect_structured(FakeListChatModel(responses=[]), "hf:tiny"))
    assert found.method == "prompt" and "not an OpenAI-compatible client" in found.notes[0]


def test_instruct_with_auto_uses_and_records_what_the_server_honours(serve, tmp_path) -> None:
    """The CLI's opener wiring: against a vLLM without a tool parser every call would 400 with tools."""
    seeds = tmp_path / "seeds.jsonl"
    write_jsonl(seeds, [Seed(id="demo:m.triple", name="triple", signature="def triple(xs)",
                             code='def triple(xs):\n    """Each number of xs times 3."""\n    return [x * 3 for x in xs]\n')])
    out = tmp_path / "ins.jsonl"
    done = subprocess.run([str(Path(sys.executable).with_name("codestill")), "instruct", "--seeds", str(seeds),
                           "--out", str(out), "--model", _spec(serve("vllm-no-tool-parser")),
                           "--set", "llm.max_retries=0"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = json.loads(out.with_name("ins.stats.json").read_text())
    assert stats["structured"] == "json_schema" and stats["settings"]["llm"]["structured"] == "auto"
    assert len(list(read_jsonl(out, Task))) == 1


def test_the_server_profile_travels_as_a_flag_and_no_tools_still_means_prose() -> None:
    flags = SimConfig(server="vllm-no-tool-parser").to_flags()
    assert flags[flags.index("--server") + 1] == "vllm-no-tool-parser" and "--server" not in SimConfig().to_flags()
    assert SimConfig(tools=False).profile == "transformers-serve" == SimConfig(server="transformers-serve").profile
    with pytest.raises(ValueError, match="--no-tools"):
        SimConfig(tools=False, server="vllm")


def test_prose_is_not_asked_twice_but_a_garbled_reply_is() -> None:
    """A server that ignores tools answers the same way again; a cut-off one may have been bad luck."""
    with serve_subprocess(SimConfig(server="transformers-serve")) as prose, \
            serve_subprocess(SimConfig(fault_rate=1.0, faults=("bad_json",))) as garbled:
        for url, calls, method in ((prose, 2, "prompt"), (garbled, 4, "prompt")):
            before = _served(url)
            found = asyncio.run(_detect(_spec(url)))
            assert found.method == method and _served(url) - before == calls, found.notes
        assert found.notes[:2] == ("named tool choice: a malformed or cut-off tool call",
                                   "json_schema: malformed or cut-off JSON")
