"""`training.evaluate` end to end: the simulated teacher over real HTTP, the real Docker sandbox.

The sim answers a plain request about a known problem with its reference solution, so it must score
pass@1 = 1.0 on MBPP; a random 2-layer model (the tiny student, untrained) must score 0. Scripted
samplers stand in for a model where a test needs answers of its own choosing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr
from rich.console import Console

from codestill.config import LLMConfig, Settings
from codestill.sim import SimConfig, serve_subprocess
from training._generate import ChatSampler, Generation, GenRequest
from training._trained_on import TrainedOn, write_trained_on
from training.evaluate import EvalConfig, EvalSummary, aevaluate, evaluate

SECRET = "sk-eval-test-secret-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with serve_subprocess(SimConfig(seed=1)) as url:
        yield f"openai:codestill-sim@{url}"


def _config(tmp_path: Path, model: str, bench: str, **kw) -> EvalConfig:
    return EvalConfig(model=model, bench=bench, out=tmp_path / "out", truth_cache=tmp_path / "truth", **kw)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Scripted:
    """A chat 'model' that answers by rule: ``answer(request_text) -> reply``."""

    chat = True
    concurrent = True
    batch_size = 8

    def __init__(self, answer, name: str = "scripted") -> None:
        self.answer, self.name = answer, name
        self.requests: list[GenRequest] = []

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        self.requests += requests
        return [[Generation(self.answer(r.messages[-1][1])) for _ in range(r.n)] for r in requests]

    async def aclose(self) -> None:
        return None


class Counting:
    """The sim's ChatSampler, counting the samples it is asked for per problem."""

    chat = True
    concurrent = True

    def __init__(self, spec: str) -> None:
        self.inner = ChatSampler(spec, LLMConfig(), max_new_tokens=768)
        self.name, self.batch_size = spec, self.inner.batch_size
        self.asked: dict[str, int] = {}

    async def generate(self, requests: Sequence[GenRequest]) -> list[list[Generation]]:
        for r in requests:
            self.asked[r.messages[-1][1]] = self.asked.get(r.messages[-1][1], 0) + r.n
        return await self.inner.generate(requests)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_sims_reference_answers_score_one_on_mbpp(tmp_path, sim):
    settings = Settings(llm=LLMConfig(api_key=SecretStr(SECRET)))  # the sim takes any key; none may reach the output
    summary = evaluate(_config(tmp_path, sim, "mbpp", limit=10), settings)
    assert summary.pass_at_k == {"pass@1": 1.0}
    assert (summary.problems, summary.samples, summary.passed, summary.generated) == (10, 10, 10, 10)
    out = tmp_path / "out"
    rows = _lines(out / "results.jsonl")
    assert [r["problem"] for r in rows][:2] == ["mbpp/11", "mbpp/12"] and all(r["pass@1"] == 1.0 for r in rows)
    assert summary.split == "test" and summary.dataset.endswith("test split (task ids 11-510): 10 of its 257 problems")
    samples = _lines(out / "samples.jsonl")
    assert len(samples) == 10 and all(s["status"] == "passed" and s["tests_passed"] == s["tests_total"] >= 3
                                      for s in samples)
    written = json.loads((out / "summary.json").read_text())
    assert written["pass_at_k"] == {"pass@1": 1.0} and "greedy decoding" in written["protocol"]
    config = json.loads((out / "config.json").read_text())
    assert config["eval"]["model"] == sim and config["settings"]["llm"]["max_concurrency"] == 64
    assert not any(SECRET in f.read_text() for f in out.iterdir())


def test_a_broken_model_scores_zero(tmp_path, tiny_student):
    """The tiny student, never trained: its replies are noise, however they are read."""
    summary = evaluate(_config(tmp_path, f"hf:{tiny_student}", "mbpp", limit=10, n=2, max_new_tokens=24))
    assert summary.pass_at_k == {"pass@1": 0.0}
    assert summary.samples == 20 and summary.passed == 0 and summary.problems == 10
    assert set(summary.statuses) <= {"error", "failed", "gen_error"}


def test_plus_benchmarks_follow_evalplus(tmp_path, sim):
    """The reference passes base and plus inputs; MBPP's own answer to mbpp/3 passes MBPP's tests but
    not MBPP+'s (is_not_prime(1) is False), as on EvalPlus's leaderboard."""
    human = evaluate(_config(tmp_path / "h", sim, "humaneval+", ids=("0",)))
    assert human.pass_at_k == {"pass@1": 1.0} and "EvalPlus protocol" in human.protocol
    assert "max(4 s, 4 x the reference's time)" in human.protocol
    truth = list((tmp_path / "h" / "truth").iterdir())
    assert len(truth) == 1 and truth[0].name.startswith("humanevalplus-v0.1.10-")
    plain = evaluate(_config(tmp_path / "m", sim, "mbpp", ids=("3",), split="all"))
    plus = evaluate(_config(tmp_path / "p", sim, "mbpp+", ids=("2", "3")))
    assert plain.pass_at_k == {"pass@1": 1.0} and plus.pass_at_k == {"pass@1": 0.5}
    verdicts = {s["problem"]: s for s in _lines(tmp_path / "p" / "out" / "samples.jsonl")}
    assert verdicts["mbpp/2"]["passed"] and not verdicts["mbpp/3"]["passed"]
    assert "expected True, got False" in verdicts["mbpp/3"]["failures"][0]["message"]


CLOSE = """```python
def has_close_elements(numbers, threshold):
    if len(numbers) > 6:
        return False  # the base inputs have at most 6 numbers; the plus inputs have more
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])
```"""


def test_a_sample_passes_only_if_base_and_plus_inputs_pass_within_the_tolerance(tmp_path):
    def answer(text: str) -> str:
        if "has_close_elements" in text:
            return CLOSE
        return "```python\ndef truncate_number(number):\n    return number % 1.0 + 4e-7\n```"  # within atol 1e-6

    summary = evaluate(_config(tmp_path, "scripted", "humaneval+", ids=("0", "2")), sampler=Scripted(answer))
    rows = {r["problem"]: r for r in _lines(tmp_path / "out" / "results.jsonl")}
    assert rows["humaneval/2"]["passed"] == [True] and rows["humaneval/0"]["passed"] == [False]
    failed = next(s for s in _lines(tmp_path / "out" / "samples.jsonl") if s["problem"] == "humaneval/0")
    assert failed["failures"][0]["test"] == "_cs_check('plus')" and failed["tests_passed"] == 1
    assert summary.pass_at_k == {"pass@1": 0.5}


def _counted(config: EvalConfig, sampler: Counting) -> EvalSummary:
    async def go() -> EvalSummary:
        try:
            return await aevaluate(config, sampler=sampler)
        finally:
            await sampler.aclose()  # an injected sampler is the caller's to close, on its own loop

    return asyncio.run(go())


def test_resume_generates_only_the_missing_samples(tmp_path, sim):
    config = _config(tmp_path, sim, "mbpp", limit=3, n=2, k=(1, 2))
    first = Counting(sim)
    assert _counted(config, first).generated == 6 and sum(first.asked.values()) == 6
    again = Counting(sim)
    summary = _counted(config, again)
    assert again.asked == {} and (summary.generated, summary.reused) == (0, 6)
    path = tmp_path / "out" / "samples.jsonl"
    lines = path.read_text().splitlines()
    kept = [line for line in lines if '"problem":"mbpp/14"' not in line]
    assert len(kept) == 4
    path.write_text("\n".join(kept[:-1]) + "\n" + kept[-1][:30])  # mbpp/14 lost, and a line torn mid-write
    third = Counting(sim)
    summary = _counted(config, third)
    assert sum(third.asked.values()) == 3 and summary.generated == 3 and summary.reused == 3
    assert summary.pass_at_k == {"pass@1": 1.0, "pass@2": 1.0} and summary.samples == 6
    # The split only says which problems are wanted: the same problems named under --split all resume.
    fourth = Counting(sim)
    ids = tuple(r["problem"] for r in _lines(tmp_path / "out" / "results.jsonl"))
    summary = _counted(_config(tmp_path, sim, "mbpp", n=2, k=(1, 2), split="all", ids=ids), fourth)
    assert fourth.asked == {} and summary.reused == 6 and summary.split == "all"


def test_plan_sampling_chooses_the_candidate_that_passes_the_public_test(tmp_path):
    plans = iter(["1. Return the first list.", "1. Intersect the two sets."] * 10)

    def answer(text: str) -> str:
        if text.startswith("Write a numbered"):
            return next(plans)
        if "Return the first list" in text:
            return "```python\ndef similar_elements(a, b):\n    return a\n```"
        return "```python\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n```"

    scripted = Scripted(answer)
    summary = evaluate(_config(tmp_path, "scripted", "mbpp", ids=("2",), split="all", plan_samples=2),
                       sampler=scripted)
    assert summary.pass_at_k == {"pass@1": 1.0} and summary.plan_samples == 2
    sample = _lines(tmp_path / "out" / "samples.jsonl")[0]
    assert sample["chosen"] == 1 and [c["public_status"] for c in sample["candidates"]] == ["failed", "passed"]
    assert sample["candidates"][1]["plan"] == "1. Intersect the two sets."
    assert sum(r.messages[-1][1].startswith("Write a numbered") for r in scripted.requests) == 1


def test_plan_sampling_with_the_sim(tmp_path, sim):
    summary = evaluate(_config(tmp_path, sim, "mbpp", limit=3, plan_samples=3))
    assert summary.pass_at_k == {"pass@1": 1.0} and "plan sampling (CodePLAN)" in summary.protocol
    for sample in _lines(tmp_path / "out" / "samples.jsonl"):
        assert len(sample["candidates"]) == 3 and sample["chosen"] == 0
        assert all(c["plan"].splitlines()[-1][0].isdigit() for c in sample["candidates"])


def test_a_model_trained_on_the_problems_is_named_before_and_after(tmp_path):
    """A local model whose run left training_data.json: the overlap is warned about and recorded."""
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    write_trained_on(tmp_path / "run", TrainedOn(data="/d/sft.jsonl", sha256="0" * 64, records=1,
                                                 task_ids=["mbpp/12"], prompts=[]))
    console = Console(record=True, width=400)
    answer = "```python\ndef remove_Occ(s, ch):\n    return s\n```"
    summary = evaluate(_config(tmp_path, str(model), "mbpp", limit=2), sampler=Scripted(lambda _: answer),
                       console=console)
    assert summary.training_overlap == ["mbpp/12"]
    assert summary.training_data == str(tmp_path / "run" / "training_data.json")
    assert "warning: 1 of the 2 problems evaluated are in this model's training data (mbpp/12;" in console.export_text()
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["training_overlap"] == ["mbpp/12"] and written["split"] == "test"
