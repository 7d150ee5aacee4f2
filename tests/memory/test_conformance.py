"""The memory's contract, run over every backend: an embedded store, a real Chroma server and the
in-process fake (``FakeMemory``). Near duplicates that the words alone would merge (bisect_left and
bisect_right) are kept apart by the code skeleton on every backend, the fake's bag of words included."""

from __future__ import annotations

import asyncio

from codestill.records import read_jsonl, write_jsonl
from codestill.schemas import ModuleSpec, StoredModule, TestSuite
from tests.memory.conftest import module

DEDENT = '''def dedent(text):
    """Remove any common leading whitespace from every line in text."""
    lines = text.splitlines()
    indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
    margin = min(indents, default=0)
    return "\\n".join(l[margin:] for l in lines)
'''
# The same function: other formatting, comments, docstring and local names.
DEDENT_REFORMATTED = '''def dedent(text):
    # strip the margin
    rows = text.splitlines()
    widths = [len(r) - len(r.lstrip())   for r in rows if r.strip()]
    m = min(widths,default=0)
    return "\\n".join(r[m:] for r in rows)
'''
# The same behaviour under other names (function and parameter): a near duplicate.
DEDENT_RENAMED = '''def strip_margin(block):
    """Remove any common leading whitespace from every line in block."""
    lines = block.splitlines()
    indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
    margin = min(indents, default=0)
    return "\\n".join(l[margin:] for l in lines)
'''
BISECT_LEFT = '''def bisect_left(a, x):
    """Return the index where to insert item x in sorted list a, to the left of equal items."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo
'''
# Nearly the same words and the same signature, but other behaviour: must stay a record of its own.
BISECT_RIGHT = '''def bisect_right(a, x):
    """Return the index where to insert item x in sorted list a, to the right of equal items."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
'''
PRIMES = '''def is_prime(n: int) -> bool:
    """Tell whether n is a prime number."""
    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))
'''


def test_add_and_get_keep_every_field(open_memory):
    m = open_memory()
    tests = TestSuite(code="assert dedent('  a\\n  b') == 'a\\nb'")
    mod = module(DEDENT, description="Strips a common margin.").model_copy(update={"tests": tests})
    r = m.add(mod)
    assert r.status == "added" and len(m) == 1
    got = m.get(r.id)
    assert got is not None
    assert (got.name, got.signature, got.code, got.tests) == ("dedent", "def dedent(text)", DEDENT, tests)
    assert got.docstring.startswith("Remove any common leading whitespace")
    assert got.description == "Strips a common margin." and got.trajectory_id == "traj-1"
    assert got.verification is not None and got.verification.tests_passed == 3
    assert (got.times_added, got.times_retrieved, got.times_reused) == (1, 0, 0)


def test_only_verified_modules_enter_by_default(open_memory):
    m = open_memory()
    assert m.add(module(PRIMES, verified=False)).status == "unverified"
    assert len(m) == 0
    m.close()
    lenient = open_memory(verified_only=False)
    assert lenient.add(module(PRIMES, verified=False)).status == "added"


def test_code_that_does_not_parse_is_refused_not_raised(open_memory):
    m = open_memory()
    r = m.add(module(PRIMES).model_copy(update={"code": "def broken(:\n"}))
    assert r.status == "invalid" and len(m) == 0


def test_exact_duplicate_merges_counts(open_memory):
    m = open_memory()
    first = m.add(module(DEDENT))
    again = m.add(module(DEDENT_REFORMATTED))
    assert again.status == "duplicate" and again.id == first.id
    assert len(m) == 1 and m.get(first.id).times_added == 2


def test_near_duplicate_merges_counts(open_memory):
    m = open_memory()
    first = m.add(module(DEDENT))
    near = m.add(module(DEDENT_RENAMED))
    assert near.status == "near_duplicate" and near.id == first.id
    assert len(m) == 1 and m.get(first.id).times_added == 2


def test_similar_words_but_other_behaviour_stay_apart(open_memory):
    m = open_memory()
    left, right = m.add(module(BISECT_LEFT)), m.add(module(BISECT_RIGHT))
    assert (left.status, right.status) == ("added", "added") and left.id != right.id
    assert len(m) == 2


def test_duplicates_inside_one_batch(open_memory):
    m = open_memory()
    results = m.add_many([module(DEDENT), module(DEDENT_REFORMATTED), module(DEDENT_RENAMED), module(PRIMES)])
    assert [r.status for r in results] == ["added", "duplicate", "near_duplicate", "added"]
    assert len(m) == 2 and m.get(results[0].id).times_added == 3


def test_search_scores_order_and_counts(open_memory):
    m = open_memory()
    ids = {r.id for r in m.add_many([module(DEDENT), module(PRIMES), module(BISECT_LEFT)])}
    spec = ModuleSpec(name="is_prime", signature="def is_prime(n: int) -> bool",
                      description="Check whether a number is prime.")
    hits = m.search(spec, k=3, min_score=0.0)
    assert hits[0].module.name == "is_prime"
    assert all(0.0 <= h.score <= 1.0 for h in hits) and {h.module.id for h in hits} <= ids
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].spec_name == "is_prime" and hits[0].module.times_retrieved == 1
    assert m.get(hits[0].module.id).times_retrieved == 1
    # min_score filters; a human search counts nothing.
    assert all(h.score >= hits[0].score for h in m.search(spec, k=3, min_score=hits[0].score, count=False))
    m.search_text("prime number test", k=1)
    assert m.get(hits[0].module.id).times_retrieved == 1
    m.mark_reused([hits[0].module.id])
    assert m.get(hits[0].module.id).times_reused == 1


def test_search_of_an_empty_memory(open_memory):
    assert open_memory().search(ModuleSpec(name="f", signature="def f()"), k=3) == []


def test_64_concurrent_adds_and_searches_lose_nothing(open_memory):
    m = open_memory()
    # 32 distinct modules, each added twice at once, with 64 searches interleaved.
    codes = [f"def scale_{i}(x):\n    \"\"\"Multiply x by {i} and add {i * 7}.\"\"\"\n    return x * {i} + {i * 7}\n"
             for i in range(32)]
    spec = ModuleSpec(name="scale", signature="def scale(x)", description="multiply a number")

    async def main():
        adds = [m.aadd(module(c)) for c in codes * 2]
        searches = [m.asearch(spec, k=3, min_score=0.0) for _ in range(64)]
        return await asyncio.gather(*adds), await asyncio.gather(*searches)

    added, found = asyncio.run(main())
    assert sorted(r.status for r in added).count("added") == 32
    assert len(m) == 32
    assert sum(s.times_added for s in m.iter_all()) == 64
    assert all(len(hits) == 3 or len(m) < 3 for hits in found)
    assert sum(s.times_retrieved for s in m.iter_all()) == sum(len(hits) for hits in found)


def test_retrieval_counts_reach_the_store_on_close(open_memory):
    m = open_memory()
    first = m.add(module(PRIMES))
    spec = ModuleSpec(name="is_prime", signature="def is_prime(n: int) -> bool", description="prime test")
    assert [h.module.times_retrieved for h in m.search(spec, k=1, min_score=0.0)] == [1]
    assert [h.module.times_retrieved for h in m.search(spec, k=1, min_score=0.0)] == [2]  # pending ones shown
    m.close()
    with open_memory() as again:  # another writer: it sees only what was written
        assert again.get(first.id).times_retrieved == 2


def test_export_import_round_trip(open_memory, another_store, tmp_path):
    m = open_memory()
    m.add_many([module(DEDENT), module(DEDENT_REFORMATTED), module(PRIMES)])
    m.search(ModuleSpec(name="p", signature="def p(n)", description="prime test"), k=1)
    out = tmp_path / "export.jsonl"
    assert write_jsonl(out, m.iter_all()) == 2
    exported = {r.id: r for r in read_jsonl(out, StoredModule)}
    with open_memory(**another_store) as copy:
        results = copy.add_many(list(exported.values()))
        assert {r.status for r in results} == {"added"}
        assert {r.id: r for r in copy.iter_all()} == exported


def test_remove(open_memory):
    m = open_memory()
    r = m.add(module(PRIMES))
    assert m.remove(r.id) and len(m) == 0 and m.get(r.id) is None
    assert not m.remove(r.id)
