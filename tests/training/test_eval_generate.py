"""The local sampler's continuous batching: what a row generates does not depend on what shares its
batch, and a chat reply ends where its first ```python block closes."""

from __future__ import annotations

import asyncio

from training._generate import GenRequest, TransformersSampler, _code_closed, _TokenText

PROMPTS = ["Write a function to add two numbers.", "def add(a, b):", "Sort a list.",
           "Write a function to find the shared elements from the given two lists.", "for x in xs:"]


def _request(text: str, **kw) -> GenRequest:
    return GenRequest(messages=(("user", text),), prompt=text, **kw)


def test_rows_generate_the_same_alone_or_batched_with_others(tiny_student):
    sampler = TransformersSampler(str(tiny_student), max_new_tokens=12, batch_size=2, style="auto", seed=0)
    # A prompt near the 512-token context has room for 5 tokens only: its row leaves early, and the next
    # joins a batch whose other row is mid-flight (caches of other lengths, stacked).
    long = next(t for t in ("x " * k for k in range(400, 600))
                if len(sampler.tokenizer(sampler._text(_request(t)), add_special_tokens=False).input_ids) == 507)

    async def go(requests: list[GenRequest]) -> list[list[str]]:
        return [[g.text for g in gens] for gens in await sampler.generate(requests)]

    async def run() -> tuple[list[list[str]], list[list[str]]]:
        greedy = [_request(p) for p in [PROMPTS[0], long, *PROMPTS[1:]]]
        sampled = _request(PROMPTS[0], n=3, temperature=0.8, seed=5)
        # Five greedy rows and three sampled ones through two slots: rows leave and join mid-flight.
        together = await go([*greedy, sampled])
        alone = [(await go([r]))[0] for r in [*greedy, sampled]]
        await sampler.aclose()
        return together, alone

    together, alone = asyncio.run(run())
    assert together == alone
    assert len(together[-1]) == 3 and len(set(together[-1])) > 1  # three draws, each from its own seed
    assert sampler.stats.requests == 18 and sampler.stats.batches < 18


def test_a_chat_reply_is_done_once_its_first_python_block_closes(tokenizer):
    reply = "Sure.\n```text\nnot code\n```\n```python\ndef f():\n    return 1\n```\nThen more prose.\n```python\nx\n```"
    ids = tokenizer(reply, add_special_tokens=False).input_ids
    done = _code_closed(_TokenText(tokenizer))
    first = next(i for i in range(1, len(ids) + 1) if done(ids[:i]))
    text = tokenizer.decode(ids[:first])
    assert text.rstrip().endswith("return 1\n```") and "prose" not in text  # not at the ```text block
