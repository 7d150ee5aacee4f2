"""The agents' prompts, read from ``agents/prompts/<name>.md`` (shipped as package data).

Templates use ``string.Template`` placeholders (``$field``): code and JSON are full of braces, so
``str.format`` is out. A literal dollar sign in a prompt file is written ``$$``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


@cache
def prompt(name: str) -> str:
    """The text of ``agents/prompts/<name>.md`` (read once; it is read-only data)."""
    return resources.files("agents").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")


def render(name: str, /, **fields: object) -> str:
    """``prompt(name)`` with every ``$field`` filled in; a missing field raises KeyError."""
    return Template(prompt(name)).substitute({k: str(v) for k, v in fields.items()}).strip()


def fenced(text: str, lang: str = "python") -> str:
    """``text`` in a fence that its own content cannot close."""
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.strip(chr(10))}\n{ticks}"
