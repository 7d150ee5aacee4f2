"""What a model is asked, and how its answer becomes a program.

Chat models get EvalPlus's instruction prompt: one user message asking for a self-contained script
in a markdown block, with the problem (HumanEval: the function stub; MBPP: the instruction and one
assert in a docstring) in a fence; the code is the reply's last ```python (or untagged) block, else
the whole reply. A HumanEval answer without the function's ``def`` is taken as the body under the
stub, as EvalPlus does. Base models continue the problem prompt itself and stop where Codex did.

Plan sampling (CodePLAN) asks, in plain words with no codestill system line, for a numbered plan,
then for code that follows one plan; a student trained on codestill's plan records has seen both.
"""

from __future__ import annotations

import re

from codestill.structured import extract_code
from training._bench import Problem
from training._generate import GenRequest

CODE_INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem "
                    "in a markdown code block:")
PLAN_INSTRUCTION = ("Write a numbered, step-by-step plan for solving the following problem. "
                    "Describe the steps in words; do not write code yet.")
FOLLOW_PLAN = "Follow this plan:"
# Where a base model's continuation is cut (the Codex paper's stop sequences for HumanEval; MBPP's
# prompt ends in a docstring, so its completion is a whole program: cut only at tests or prose).
_STOPS = {"humaneval": ("\nclass", "\ndef", "\n#", "\nif", "\nprint"),
          "mbpp": ("\nassert", '\n"""', "\nif __name__", "\nprint(", "\n```")}


def _fenced(problem: Problem) -> str:
    return f"```\n{problem.prompt.strip()}\n```"


def code_request(problem: Problem, *, chat: bool, n: int, temperature: float, seed: int,
                 plan: str | None = None) -> GenRequest:
    text = f"{CODE_INSTRUCTION}\n{_fenced(problem)}\n"
    if plan is not None:
        text += f"{FOLLOW_PLAN}\n{plan.strip()}\n"
    return GenRequest(messages=(("user", text),), prompt=problem.prompt, n=n, temperature=temperature, seed=seed)


def plan_request(problem: Problem, *, n: int, temperature: float, seed: int) -> GenRequest:
    text = f"{PLAN_INSTRUCTION}\n{_fenced(problem)}\n"
    return GenRequest(messages=(("user", text),), prompt="", n=n, temperature=temperature, seed=seed)


def _truncate(completion: str, stops: tuple[str, ...]) -> str:
    cut = min((i for i in (completion.find(s) for s in stops) if i >= 0), default=len(completion))
    return completion[:cut]


def solution(problem: Problem, text: str, *, chat: bool) -> str:
    """The program a model's answer stands for."""
    if not chat:
        completion = _truncate(text, _STOPS[problem.dataset])
        return problem.prompt + completion if problem.dataset == "humaneval" else completion
    code = extract_code(text)
    code = (code if code is not None else text).strip("\n") + "\n"
    if problem.dataset == "humaneval" and not re.search(rf"^\s*(async\s+)?def\s+{re.escape(problem.entry_point)}\s*\(",
                                                        code, re.M):
        return problem.prompt + code
    return code
