"""Duplicate removal: exact (normalised text and code), MinHash near duplicates, same function names."""

from __future__ import annotations

import pytest

from tools.dedup import Deduper, dedup, function_names

PARAGRAPH = ("Write a function that reads a list of order records, groups them by customer, and returns "
             "for every customer the total amount spent, the number of orders placed and the date of the "
             "most recent order, sorted by total amount from the highest to the lowest.")
# One word changed: most word 5-grams survive (estimated Jaccard about 0.7).
ONE_WORD = PARAGRAPH.replace("most recent", "latest")
# Several changes spread over the text: few 5-grams survive.
REWRITTEN = ("Write a function that takes order records, groups them per client, and gives back for each "
             "client the money spent, how many orders they made and when they last ordered, with the "
             "biggest spenders first.")


def test_exact_duplicates_ignore_case_and_whitespace():
    d = Deduper()
    assert d.check_and_add("a", PARAGRAPH) is None
    found = d.check_and_add("b", "  " + PARAGRAPH.upper().replace(" ", "\n   "))
    assert found is not None and (found.key, found.of, found.rule, found.similarity) == ("b", "a", "exact", 1.0)
    assert "b" not in d and "a" in d and len(d) == 1


def test_exact_duplicate_code_differs_only_in_comments_docstrings_and_local_names():
    first = "def total(xs):\n    '''Sum.'''\n    acc = 0\n    for x in xs:\n        acc += x\n    return acc\n"
    second = "def total(xs):\n    # add them up\n    s = 0\n    for v in xs:\n        s += v\n    return s\n"
    d = Deduper(near=False)
    assert d.check_and_add("one", first, first) is None
    found = d.check_and_add("two", second, second)
    assert found is not None and (found.of, found.rule) == ("one", "exact")
    # Another function name is another interface: not an exact duplicate.
    assert d.check_and_add("three", second.replace("total", "summed"), second.replace("total", "summed")) is None


def test_near_duplicates_above_the_threshold_are_removed_and_below_are_kept():
    d = Deduper()
    assert d.check_and_add("orig", PARAGRAPH) is None
    near = d.check_and_add("reworded", ONE_WORD)
    assert near is not None and near.rule == "near" and near.of == "orig" and 0.5 <= near.similarity < 1
    assert "near duplicate" in near.describe() and "orig" in near.describe()
    assert d.check_and_add("rewritten", REWRITTEN) is None
    assert d.check_and_add("unrelated", "Parse an ISO 8601 date string and return the weekday name.") is None
    assert len(d) == 3


def test_the_threshold_is_configurable():
    strict = Deduper(threshold=0.95)
    assert strict.check_and_add("orig", PARAGRAPH) is None
    assert strict.check_and_add("reworded", ONE_WORD) is None
    loose = Deduper(threshold=0.3)
    loose.add("orig", PARAGRAPH)
    assert loose.check("reworded", ONE_WORD) is not None
    with pytest.raises(ValueError, match="threshold"):
        Deduper(threshold=0)


def test_same_set_of_function_names_rule():
    a = "def parse(s):\n    return s.split(',')\n\ndef render(xs):\n    return ';'.join(xs)\n"
    b = "def render(items):\n    out = []\n    for i in items:\n        out.append(str(i))\n    return '|'.join(out)\n\n" \
        "def parse(text):\n    return [t.strip() for t in text.split()]\n"
    only_parse = "def parse(text):\n    return text.partition('=')\n"
    no_functions = "VALUE = 3\n"
    assert function_names(a) == {"parse", "render"} and function_names("def broken(:") == frozenset()
    d = Deduper(near=False)
    assert d.check_and_add("a", "first answer", a) is None
    found = d.check_and_add("b", "second answer", b)
    assert found is not None and (found.of, found.rule) == ("a", "same_names")
    assert d.check_and_add("c", "third answer", only_parse) is None  # another set of names
    assert d.check_and_add("d", "fourth answer", no_functions) is None
    assert d.check_and_add("e", "fifth answer", "X = 4\n") is None  # no names: the rule does not apply
    off = Deduper(near=False, same_names=False)
    off.add("a", "first answer", a)
    assert off.check("b", "second answer", b) is None


def test_dedup_over_an_iterable_keeps_the_first_of_each_group():
    items = [("1", PARAGRAPH), ("2", REWRITTEN), ("3", PARAGRAPH.lower()), ("4", ONE_WORD), ("5", "Reverse a string.")]
    result = dedup(items, key=lambda i: i[0], text=lambda i: i[1])
    assert [k for k, _ in result.kept] == ["1", "2", "5"]
    assert [(item[0], dup.rule, dup.of) for item, dup in result.removed] == [("3", "exact", "1"), ("4", "near", "1")]


def test_a_deduper_carries_items_across_calls_and_refuses_a_key_twice():
    d = Deduper()
    d.add("kept-earlier", PARAGRAPH)
    result = dedup([("new", ONE_WORD)], key=lambda i: i[0], text=lambda i: i[1], deduper=d)
    assert result.kept == [] and result.removed[0][1].of == "kept-earlier"
    with pytest.raises(ValueError, match="added already"):
        d.add("kept-earlier", "anything")


def test_texts_without_words_are_compared_exactly_only():
    d = Deduper()
    assert d.check_and_add("a", "+++") is None
    assert d.check_and_add("b", "---") is None  # no words, no sketch: not near duplicates
    found = d.check_and_add("c", "+++")
    assert found is not None and found.rule == "exact"
