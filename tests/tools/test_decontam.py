"""Benchmark decontamination against the bundled HumanEval and MBPP: planted copies, verbatim and
lightly edited, are caught with the item they came from; near misses are spared."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from codestill.data import load_humaneval, load_mbpp, load_mbpp_split, mbpp_split
from tools.decontam import BenchmarkText, Decontaminator, benchmark_texts


@pytest.fixture(scope="module")
def decon() -> Decontaminator:
    return Decontaminator()


def _text(item_id: str, part: str) -> str:
    return next(t.text for t in benchmark_texts() if t.item_id == item_id and t.part == part)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_benchmark_texts_cover_both_benchmarks():
    texts = benchmark_texts()
    assert {t.benchmark for t in texts} == {"humaneval", "mbpp"}
    mbpp_ids = {t.item_id for t in texts if t.benchmark == "mbpp"}
    # MBPP's evaluated problems only: the test split and the few-shot prompts, task ids 1-510, all of them.
    assert mbpp_ids == {f"mbpp/{i}" for i in range(1, 511)}
    assert len({t.item_id for t in texts}) == len(load_humaneval()) + 510
    # Both wordings of a sanitized test problem are guarded: sanitized MBPP rewrote many prompts.
    assert {t.text for t in texts if t.item_id == "mbpp/17" and t.part == "prompt"} >= {
        next(p.instruction for p in load_mbpp() if p.id == "mbpp/17")}
    # HumanEval/115 puts `import math` before its docstring; the docstring is still found.
    assert "wells" in _text("humaneval/115", "prompt")
    assert _text("humaneval/0", "solution").strip().startswith("for idx, elem in enumerate(numbers)")


def test_mbpp_train_and_validation_problems_are_training_data_not_contamination(decon):
    """codestill teaches on MBPP's train and validation splits: they must pass, or no data would be left;
    the few of them that copy a test problem (MBPP repeats some tasks across splits) are still caught."""
    teaching = load_mbpp_split("train", "validation")
    flagged = [p for p in teaching if decon.check(p.instruction) is not None]
    assert {mbpp_split(p.id) for p in teaching} == {"train", "validation"}
    assert len(flagged) < len(teaching) * 0.1
    for p in flagged:  # each flagged one matched an evaluated problem, never itself
        hit = decon.check(p.instruction)
        assert hit is not None and mbpp_split(hit.item_id) in ("test", "prompt")


def test_verbatim_copies_are_caught_with_their_item(decon):
    he = load_humaneval()[12]
    hit = decon.check(f"# my helper\n{he.reference}\n\nprint({he.entry_point}(['a', 'bb']))\n")
    assert hit is not None and (hit.benchmark, hit.item_id, hit.rule, hit.score) == ("humaneval", he.id, "substring", 1.0)
    mb = load_mbpp()[40]
    hit = decon.check(f"Here is a task for you. {mb.instruction} Please use plain Python.")
    assert hit is not None and (hit.item_id, hit.part, hit.rule) == (mb.id, "prompt", "substring")
    hit = decon.check(mb.reference)
    assert hit is not None and hit.item_id == mb.id and hit.part in ("prompt", "solution")
    assert mb.id in hit.describe()


def test_changed_case_and_whitespace_are_still_a_copy(decon):
    doc = _text("humaneval/20", "prompt")
    shouted = "\n".join(line.strip().upper() for line in doc.splitlines())
    hit = decon.check(f'def pick(values):\n    """{shouted}"""\n')
    assert hit is not None and (hit.item_id, hit.part, hit.rule) == ("humaneval/20", "prompt", "substring")
    # A solution re-indented (inside a class) and re-spaced.
    solution = _text("mbpp/17", "solution")
    indented = "class Shapes:\n" + "".join("    " + line + "\n" for line in solution.splitlines())
    hit = decon.check(indented.replace("(", " ( "))
    assert hit is not None and hit.item_id == "mbpp/17"


def test_a_sentence_swapped_or_replaced_is_caught_by_ngrams(decon):
    doc = _flat(_text("humaneval/1", "prompt"))
    first = "Input to this function is a string containing multiple groups of nested parentheses."
    replaced = doc.replace("Your goal is to separate those group into separate strings and return the list of those.",
                           "You should split them into distinct strings and give back a list of them.")
    reordered = doc.replace(first + " ", "").replace("input string.", "input string. " + first)
    for edited in (replaced, reordered):
        assert edited != doc
        hit = decon.check(edited)
        assert hit is not None and (hit.item_id, hit.part, hit.rule) == ("humaneval/1", "prompt", "ngram"), edited
        assert 0 < hit.score < 1 and len(hit.snippet.split()) >= 20
    # A long MBPP instruction with two phrases reworded.
    long = _flat(_text("mbpp/229", "prompt"))
    edited = long.replace("re-arranges", "reorders").replace("is preserved", "stays the same")
    hit = decon.check(edited)
    assert hit is not None and (hit.item_id, hit.rule) == ("mbpp/229", "ngram") and hit.score >= 0.5


@pytest.mark.parametrize("text", [
    # Shares "write a function to find the shared elements" with mbpp/2, and little else.
    "Write a function to find the shared elements between two sets of strings using a dictionary.",
    # MBPP's boilerplate opening, then another task.
    "Write a function that takes in a list and an integer k and rotates the list to the right by k positions.",
    # The same topic as humaneval/0, in other words.
    "Check if in given list of strings, there are any duplicates ignoring case.",
    # Solutions too short and common to mean anything (HumanEval/53 is `return x + y`).
    "def add(x, y):\n    return x + y\n",
    "def uniq(l):\n    return sorted(list(set(l)))\n",
    # Two MBPP problems' shared phrasing: one 10-gram in common is not enough.
    "Write a function to find the surface area of a torus given both radii.",
])
def test_near_misses_are_spared(decon, text):
    assert decon.check(text) is None


def test_the_standard_library_seeds_are_clean(decon, stdlib_mined):
    seeds, _ = stdlib_mined
    assert all(hit is None for hit in decon.check_many([s.code for s in seeds]))


def test_custom_benchmark_texts_and_parameters():
    own = [BenchmarkText("private", "private/1", "prompt",
                         "Compute the checksum of a record by adding the code points of its characters modulo 97.")]
    d = Decontaminator(own, min_chars=20)
    hit = d.check("Task: compute the checksum of a record by adding the code points of its characters modulo 97.")
    assert hit is not None and (hit.benchmark, hit.item_id) == ("private", "private/1")
    assert d.check(_text("humaneval/0", "prompt")) is None
    with pytest.raises(ValueError):
        Decontaminator(own, ngram=10, min_run=5)


def _hashed_trigrams(texts: Sequence[str]) -> np.ndarray:
    """A small real embedding: character trigrams hashed into 512 buckets (similar wording, close vectors)."""
    out = np.zeros((len(texts), 512), dtype=np.float32)
    for row, text in enumerate(texts):
        flat = " ".join(text.lower().split())
        for i in range(len(flat) - 2):
            out[row, int(hashlib.md5(flat[i:i + 3].encode()).hexdigest(), 16) % 512] += 1
    return out


def test_embedding_neighbours_are_off_by_default_and_caught_when_on():
    mb = next(p for p in load_mbpp() if p.id == "mbpp/2")
    paraphrase = "Write a function to find the shared elements in the given two lists."  # one word changed
    assert Decontaminator().check(paraphrase) is None  # too short for the n-gram rule
    on = Decontaminator(embed=_hashed_trigrams, embedding_threshold=0.9)
    hit = on.check(paraphrase)
    assert hit is not None and (hit.item_id, hit.rule, hit.snippet) == ("mbpp/2", "embedding", mb.instruction)
    assert hit.score >= 0.9
    results = on.check_many([paraphrase, "Sort the words of a sentence alphabetically.", mb.instruction])
    assert [r.rule if r else None for r in results] == ["embedding", None, "substring"]
    # Code around the prose pulls the embedding away; `prose` says what to compare.
    code = f'def common(first, second):\n    """{paraphrase}"""\n    return sorted(set(first) & set(second))\n'
    assert on.check(code) is None
    hit = on.check(code, prose=paraphrase)
    assert hit is not None and (hit.item_id, hit.rule) == ("mbpp/2", "embedding")
