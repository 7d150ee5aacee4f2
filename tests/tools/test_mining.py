"""Mining functions from real source: top-level functions with docstrings."""

from __future__ import annotations

from tools.mining import mine_source, mine_tree, stdlib_root

SOURCE = '''"""A module."""
import functools

def documented(a, b=1):
    """Add b to a."""
    return a + b

def undocumented(a):
    return a

def _private(a):
    """Hidden."""
    return a

@functools.cache
def decorated(n):
    """Cached."""
    return n

class K:
    def method(self):
        """Methods are not top-level functions."""
'''


def test_mine_source_takes_documented_public_top_level_functions():
    found = {f.name: f for f in mine_source(SOURCE, "pkg.mod", "pkg/mod.py")}
    assert set(found) == {"documented", "decorated"}
    d = found["documented"]
    assert (d.qualname, d.signature, d.docstring, d.lineno) == ("pkg.mod.documented", "def documented(a, b=1)", "Add b to a.", 4)
    assert d.code.startswith("def documented(a, b=1):") and d.code.rstrip().endswith("return a + b")
    assert found["decorated"].code.startswith("@functools.cache\ndef decorated(n):")
    assert {f.name for f in mine_source(SOURCE, "m", private=True)} == {"documented", "decorated", "_private"}


def test_code_that_does_not_parse_gives_nothing():
    assert mine_source("def broken(:\n    '''x'''\n", "m") == []


def test_mine_tree_on_the_stdlib():
    found = {f.qualname: f for f in mine_tree(stdlib_root())}
    assert len(found) > 1000
    assert "textwrap.dedent" in found and "shutil.copyfileobj" in found and "email.utils.parseaddr" in found
    assert not any(".test." in q or q.startswith("test.") for q in found)  # the test suite is skipped
