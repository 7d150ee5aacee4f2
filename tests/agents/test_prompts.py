"""Prompt files: present, rendered with string.Template, and shipped with the package."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from agents._prompts import fenced, prompt, render
from codestill.schemas import ROLES

SYSTEM = ("planner", "decomposer", "coder", "tester", "critic")


@pytest.mark.parametrize("role", SYSTEM)
def test_each_system_prompt_names_its_role_first(role):
    assert role in ROLES
    assert prompt(role).startswith(f"You are the codestill {role}.")


def test_every_prompt_file_has_only_known_placeholders():
    files = sorted(p.name for p in resources.files("agents").joinpath("prompts").iterdir()
                   if p.name.endswith(".md"))
    assert len(files) >= 12
    for name in files:
        text = prompt(name.removesuffix(".md"))
        fields = set(re.findall(r"\$(\w+)", text.replace("$$", "")))
        # no braces-based formatting, and every placeholder renders
        render(name.removesuffix(".md"), **dict.fromkeys(fields, "X"))


def test_render_substitutes_code_with_braces_and_dollars_verbatim():
    code = "def f(d: dict) -> str:\n    return f'{d}' + '$x ${y}'"
    out = render("planner_backward_user", code=fenced(code))
    assert out.endswith(f"```python\n{code}\n```")
    with pytest.raises(KeyError):
        render("planner_backward_user")


def test_fenced_is_not_closed_by_its_content():
    text = "x = '''```'''"
    block = fenced(text)
    assert block.startswith("````python\n") and block.endswith("\n````")
