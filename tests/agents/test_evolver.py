"""The evolver: each heuristic's prompt, the heuristic draw, and each elimination rule."""

from __future__ import annotations

from collections import Counter

import pytest

from agents import evolver
from agents._prompts import prompt
from codestill.config import HEURISTICS, EvolConfig
from tests.agents.conftest import run, scripted

PARENT = "Write a function `add(a, b)` that returns the sum of two integers."


@pytest.mark.parametrize("heuristic", HEURISTICS)
def test_each_heuristic_asks_with_its_own_method_and_reads_the_answer(heuristic: str) -> None:
    child = PARENT + " Both inputs may be negative, and the result must not overflow 64 bits."
    model = scripted({"instruction": child})
    reply = run(evolver.evolve(model, PARENT, heuristic))  # type: ignore[arg-type]
    assert reply.value is not None and reply.value.instruction == child
    method = prompt(f"evol_{heuristic}").strip()
    assert method in model.user and PARENT in model.user
    others = [prompt(f"evol_{h}").strip() for h in HEURISTICS if h != heuristic]
    assert not any(o in model.user for o in others)
    assert model.system.startswith("You are the codestill evolver.")


def test_the_draw_follows_the_weights_and_is_stable() -> None:
    weights = EvolConfig().weights
    draws = Counter(evolver.pick_heuristic(weights, f"0|task{i}|1") for i in range(4000))
    assert set(draws) == set(HEURISTICS)
    # complexity is down-weighted (0.25 against 1.0 for each of the others)
    assert draws["complexity"] < 0.5 * min(draws[h] for h in HEURISTICS if h != "complexity")
    assert evolver.pick_heuristic(weights, "k") == evolver.pick_heuristic(weights, "k")
    only = {"reasoning": 1.0, "complexity": 0.0}
    assert {evolver.pick_heuristic(only, f"k{i}") for i in range(200)} == {"reasoning"}


def test_weights_naming_no_heuristic_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown heuristic"):
        EvolConfig(weights={"harder": 1.0})
    with pytest.raises(ValueError, match="at least one"):
        EvolConfig(weights={"reasoning": 0.0})


@pytest.mark.parametrize(("child", "reason"), [
    (PARENT, "unchanged"),
    (PARENT.replace("integers", "ints"), "unchanged"),  # one word swapped: barely differs
    ("  write a FUNCTION `add(a, b)` that returns the sum of two integers.  ", "unchanged"),  # case/space only
    ("#Rewritten Prompt#:\n" + PARENT + " Inputs may be floats as well as integers.", "copied_prompt"),
    ("Here we increase the difficulty: " + PARENT + " Inputs may be floats too.", "copied_prompt"),
    ("I'm sorry, but I can't help with making this question harder.", "refusal"),
    ("As an AI language model, I cannot rewrite tasks of this kind for you.", "refusal"),
    (PARENT + " Inputs may also be floats, and the result must be rounded to 2 places.", None),
])
def test_screen_rules(child: str, reason: str | None) -> None:
    assert evolver.screen(PARENT, child) == reason


def test_a_parent_that_already_quotes_the_template_words_is_not_held_against_its_child() -> None:
    parent = "Write a function that strips '#Rewritten Prompt#' headers from a list of lines."
    child = parent + " Lines may carry the header more than once, and empty lines must be dropped."
    assert evolver.screen(parent, child) is None


def test_changed_words_counts_insertions_and_replacements() -> None:
    assert evolver.changed_words("a b c", "a b c") == 0
    assert evolver.changed_words("a b c", "a x c") == 1
    assert evolver.changed_words("a b c", "a b c d e f") == 3


def test_the_judge_reads_a_verdict() -> None:
    model = scripted({"solvable": False, "reason": "It is an essay question."})
    reply = run(evolver.judge(model, "Discuss the history of sorting."))
    assert reply.value is not None and reply.value.solvable is False
    assert "Discuss the history of sorting." in model.user
