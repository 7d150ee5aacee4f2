"""The conceptor: eight few-shot examples from data, concepts, and an instruction from them."""

from __future__ import annotations

import json
import re

from langchain_core.messages import HumanMessage, SystemMessage

from agents import conceptor
from tests.agents.conftest import run, scripted

SNIPPET = "def total(xs):\n    \"\"\"Sum of xs.\"\"\"\n    return sum(x for x in xs)\n"


def test_the_examples_are_eight_of_ours_with_every_category() -> None:
    shots = conceptor.shots()
    assert len(shots) == 8
    assert {s.category for s in shots} == {"function", "class", "program"}
    assert {s.difficulty for s in shots} == {"easy", "medium", "hard"}
    assert all(s.concepts and s.instruction and s.snippet for s in shots)


def test_concepts_are_asked_eight_shot_in_one_message_the_request_last() -> None:
    model = scripted({"concepts": ["generator expressions", "summation"]})
    reply = run(conceptor.concepts(model, SNIPPET, key="k"))
    assert reply.value is not None and reply.value.concepts == ["generator expressions", "summation"]
    system, user, _schema_request = model.seen[0]
    assert isinstance(system, SystemMessage) and isinstance(user, HumanMessage)
    text = str(user.content)
    answers = [json.loads(line) for line in re.findall(r"### Answer\n(.*)", text)]
    assert len(answers) == 8 and all(a["concepts"] for a in answers)
    assert {s.snippet.strip() for s in conceptor.shots()} == {
        s.strip() for s in re.findall(r"```python\n(.*?)```", text, re.S)[:-1]}
    request = text.rsplit("### Answer", 1)[1]
    assert "### Snippet" in request and request.rstrip().endswith("return sum(x for x in xs)\n```")


def test_the_draw_of_examples_changes_with_the_key_and_can_be_smaller() -> None:
    first, second = scripted({"concepts": ["a"]}), scripted({"concepts": ["a"]})
    run(conceptor.concepts(first, SNIPPET, key="one"))
    run(conceptor.concepts(second, SNIPPET, key="two"))
    assert [m.content for m in first.seen[0]] != [m.content for m in second.seen[0]]
    few = scripted({"concepts": ["a"]})
    run(conceptor.concepts(few, SNIPPET, n_shots=2, key="one"))
    assert str(few.seen[0][1].content).count("### Answer") == 2
    none = scripted({"concepts": ["a"]})
    run(conceptor.concepts(none, SNIPPET, n_shots=0, key="one"))
    assert "### Answer" not in str(none.seen[0][1].content) and "### Snippet" in str(none.seen[0][1].content)


def test_an_instruction_is_written_from_concepts_category_and_difficulty() -> None:
    text = "Write a Python function `mean(xs: list[float]) -> float` ..."
    model = scripted({"instruction": text})
    reply = run(conceptor.instruction(model, ["summation", "division"], "class", "hard", key="k"))
    assert reply.value is not None and reply.value.instruction == text
    last = str(model.seen[0][-2].content).rsplit("### Answer", 1)[1]
    assert "### Category\nclass" in last and "### Difficulty\nhard" in last
    assert "### Concepts\nsummation, division" in last
