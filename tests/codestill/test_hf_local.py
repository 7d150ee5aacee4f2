"""`hf:` chat models on a real small model (SmolLM2-135M-Instruct on the CPU): token counts,
finish reasons, per-call limits, the time limit, and batching of concurrent calls."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from codestill._hf_chat import LocalChatModel
from codestill.config import LLMConfig
from codestill.errors import UnknownModel
from codestill.llm import aclose, make_chat_model
from tests.real_model import smollm2

STORY = [HumanMessage("Write a long story about a dragon who learns to code.")]


@pytest.fixture(scope="module")
def chat() -> LocalChatModel:
    model = make_chat_model(f"hf:{smollm2()}", LLMConfig(max_tokens=24, temperature=0))
    assert isinstance(model, LocalChatModel)
    return model


def test_usage_counts_the_real_tokens(chat):
    messages = [SystemMessage("You are a terse assistant."), HumanMessage("What is the capital of France?")]
    reply = asyncio.run(chat.ainvoke(messages))
    tok = chat.tokenizer
    prompt = tok.apply_chat_template([{"role": "system", "content": "You are a terse assistant."},
                                      {"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, tokenize=False)
    usage = reply.usage_metadata
    assert usage["input_tokens"] == len(tok(prompt, add_special_tokens=False).input_ids) > 0
    assert usage["output_tokens"] == len(tok(reply.content, add_special_tokens=False).input_ids) > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert "Paris" in reply.content
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["model_name"] == str(smollm2())
    assert "timed_out" not in reply.response_metadata


@pytest.mark.parametrize(("binding", "limit"), [("max_tokens", 8), ("max_completion_tokens", 5)])
def test_a_bound_token_limit_cuts_the_reply(chat, binding, limit):
    reply = asyncio.run(chat.bind(**{binding: limit}).ainvoke(STORY))
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata["output_tokens"] == limit


def test_stop_sequences_cut_the_text(chat):
    full = chat.bind(max_tokens=8).invoke(STORY).content
    word = full.split()[2]
    reply = chat.bind(max_tokens=8).invoke(STORY, stop=[word])
    assert reply.content == full[:full.index(word)]
    assert reply.response_metadata["finish_reason"] == "stop"


def test_the_time_limit_ends_a_generation_early(chat):
    hasty = LocalChatModel(model_name="smol", lm=chat.lm, tokenizer=chat.tokenizer, max_tokens=200, timeout_s=0.05)
    start = time.monotonic()
    reply = asyncio.run(hasty.ainvoke(STORY))
    assert time.monotonic() - start < 5
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.response_metadata["timed_out"] is True
    assert reply.usage_metadata is not None and 0 < reply.usage_metadata["output_tokens"] < 200
    hasty.close()


def test_concurrent_calls_share_batches_and_match_greedy_one_at_a_time(chat):
    prompts = [("What is 2 + 2?", 8), ("Name three colours.", 4),
               ("Write a Python function that reverses a string.", 8), ("Say hello.", 6)]
    calls = [chat.bind(max_tokens=n) for _, n in prompts]

    async def one_at_a_time() -> list[str]:
        return [(await c.ainvoke([HumanMessage(p)])).content for c, (p, _) in zip(calls, prompts, strict=True)]

    async def all_at_once() -> list[str]:
        replies = await asyncio.gather(*(c.ainvoke([HumanMessage(p)]) for c, (p, _) in zip(calls, prompts, strict=True)))
        await aclose(chat)
        return [r.content for r in replies]

    alone = asyncio.run(one_at_a_time())
    before = (chat.stats.batches, chat.stats.requests)
    together = asyncio.run(all_at_once())
    batches, requests = chat.stats.batches - before[0], chat.stats.requests - before[1]
    assert requests == 4 and batches < 4
    assert together == alone


def test_a_bad_directory_is_one_clear_error(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{}")
    with pytest.raises(UnknownModel, match="cannot load it"):
        make_chat_model(f"hf:{tmp_path / 'junk'}")
