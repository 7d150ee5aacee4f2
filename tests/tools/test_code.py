"""The AST helpers the memory's duplicate checks rest on."""

from __future__ import annotations

import pytest

from tools.code import function_info, normalized_hash, signature_shape, skeleton_hash

BASE = '''def total(xs, start=0):
    """Sum xs from start."""
    acc = start
    for x in xs:  # every item
        acc += x
    return acc
'''


@pytest.mark.parametrize("variant", [
    # formatting and comments
    "def total(xs, start=0):\n    acc=start\n    for x in xs:\n        acc+=x   # add\n    return acc\n",
    # another docstring
    'def total(xs, start=0):\n    """Other words."""\n    acc = start\n    for x in xs:\n        acc += x\n    return acc\n',
    # other local names
    "def total(xs, start=0):\n    s = start\n    for item in xs:\n        s += item\n    return s\n",
])
def test_normalized_hash_ignores_what_does_not_change_behaviour(variant):
    assert normalized_hash(variant) == normalized_hash(BASE)


@pytest.mark.parametrize("variant", [
    BASE.replace("acc += x", "acc -= x"),  # behaviour
    BASE.replace("def total(xs, start=0)", "def total(items, start=0)").replace("in xs", "in items"),  # interface
    BASE.replace("def total", "def sum_all"),  # the function's name
    BASE.replace("start=0", "start=1"),  # a default
])
def test_normalized_hash_sees_behaviour_and_interface(variant):
    assert normalized_hash(variant) != normalized_hash(BASE)


def test_globals_and_builtins_are_not_renamed():
    a = "def f(xs):\n    return len(xs) + OFFSET\n"
    b = "def f(xs):\n    return len(xs) + LIMIT\n"
    assert normalized_hash(a) != normalized_hash(b)


def test_skeleton_hash_is_blind_to_every_defined_name():
    renamed = BASE.replace("def total(xs, start=0)", "def summed(values, first=0)") \
        .replace("acc = start", "acc = first").replace("in xs", "in values")
    assert normalized_hash(renamed) != normalized_hash(BASE)
    assert skeleton_hash(renamed) == skeleton_hash(BASE)
    assert skeleton_hash(BASE.replace("acc += x", "acc -= x")) != skeleton_hash(BASE)


def test_signature_shape_drops_names_keeps_kinds_and_annotations():
    shape = lambda code: signature_shape_of(code)  # noqa: E731
    assert shape("def a(x: int, y: int = 2) -> int: pass") == shape("def b(p: int, q: int = 5) -> int: pass")
    assert shape("def a(x: int) -> int: pass") != shape("def a(x: str) -> int: pass")
    assert shape("def a(x, *, y): pass") != shape("def a(x, y): pass")
    assert shape("async def a(x): pass") != shape("def a(x): pass")


def signature_shape_of(code: str) -> str:
    import ast

    fn = ast.parse(code).body[0]
    assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
    return signature_shape(fn)


def test_function_info():
    code = "import re\n\ndef helper(s):\n    return s\n\ndef main(text: str) -> str:\n    '''Clean text.'''\n    return helper(text)\n"
    info = function_info(code)
    assert (info.name, info.signature, info.docstring) == ("main", "def main(text: str) -> str", "Clean text.")
    assert function_info(code, "helper").signature == "def helper(s)"
    with pytest.raises(ValueError, match="no top-level function 'nope'"):
        function_info(code, "nope")
    with pytest.raises(SyntaxError):
        normalized_hash("def broken(:\n")
