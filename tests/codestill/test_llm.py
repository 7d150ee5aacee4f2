"""The chat-model factory: spec parsing, credentials, and a real local transformers model (hf:)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from codestill.config import LLMConfig
from codestill.errors import BadModelSpec, MissingCredentials, UnknownModel
from codestill.llm import ModelSpec, make_chat_model, parse_spec
from codestill.schemas import Plan
from codestill.structured import ask
from tests.tiny_model import build_tiny_model


@pytest.mark.parametrize(("spec", "parsed"), [
    ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
    ("openai:qwen@http://gpu:8000/v1/", ModelSpec("openai", "qwen", "http://gpu:8000/v1")),
    ("hf:/models/tiny", ModelSpec("hf", "/models/tiny")),
    ("hf:Qwen/Qwen2.5-Coder-0.5B-Instruct", ModelSpec("hf", "Qwen/Qwen2.5-Coder-0.5B-Instruct")),
])
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["gpt-4o", "anthropic:claude", "openai:", "openai:m@gpu:8000", "openai:@http://h"])
def test_bad_specs_say_the_accepted_forms(spec):
    with pytest.raises(BadModelSpec, match="openai:<model>"):
        make_chat_model(spec)


def test_openai_needs_a_key_but_a_named_server_never_gets_it(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only")
    model = make_chat_model("openai:gpt-4o-mini")
    assert isinstance(model, ChatOpenAI) and isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "sk-openai-only"
    local = make_chat_model("openai:qwen@http://127.0.0.1:8000/v1",
                            LLMConfig(max_concurrency=3, timeout_s=9, max_retries=1))
    assert isinstance(local, ChatOpenAI) and isinstance(local.openai_api_key, SecretStr)
    assert local.openai_api_key.get_secret_value() == "EMPTY"
    assert (local.max_retries, local.openai_api_base) == (1, "http://127.0.0.1:8000/v1")
    assert local.root_async_client.timeout.read == 9 and local.root_async_client.timeout.pool is None


def test_hf_local_model_answers_with_its_chat_template(tmp_path):
    path = build_tiny_model(tmp_path / "tiny")
    model = make_chat_model(f"hf:{path}", LLMConfig(max_tokens=8, temperature=0))
    reply = model.invoke([HumanMessage("Write a function to add two numbers.")])
    assert isinstance(reply.content, str)
    # An untrained model's words are no plan: that is a recorded failure, not a crash.
    answer = asyncio.run(ask(model, [HumanMessage("Plan it.")], Plan, repair_rounds=1))
    assert not answer.ok and answer.tries == 2 and answer.error


def test_hf_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(UnknownModel, match="cannot load it"):
        make_chat_model(f"hf:{tmp_path / 'no-such-model'}")
