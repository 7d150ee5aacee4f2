"""The word-overlap half of a hit's relevance."""

from __future__ import annotations

from memory._rank import content_words, overlap, relevance


def test_content_words_split_identifiers_and_drop_stop_words_and_plurals() -> None:
    assert content_words("def dedent_then_dumps(text) -> str") == {"dedent", "dump", "text", "str"}
    assert content_words("parseHTTPResponse of the lines") == {"parse", "http", "response", "line"}
    assert content_words("class address") == {"class", "address"}  # a double s is no plural


def test_overlap_is_the_share_of_the_query_found() -> None:
    query = "strip the indentation common to every line of a text"
    doc = "def dedent(text)\nRemove any common leading whitespace from every line in `text`."
    assert overlap(query, doc) == 4 / 6  # common, every, line, text of strip, indentation, common, ...
    assert overlap(query, "def dumps(obj)\nSerialize obj to a JSON formatted str.") == 0.0
    assert overlap("", doc) == 0.0


def test_relevance_blends_and_a_zero_weight_is_the_similarity() -> None:
    doc = "def dedent(text)\nRemove any common leading whitespace from every line in `text`."
    assert relevance(0.7, "common line", doc, 0.0) == 0.7
    assert relevance(0.7, "common line", doc, 0.1) == 0.9 * 0.7 + 0.1 * 1.0
    assert relevance(1.3, "zzz", doc, 0.1) == 0.9  # the similarity is clipped to [0, 1] first
