"""The instruction makers: the evolver (Code Evol-Instruct), its judge, and the conceptor (SelfCodeAlign).

    evolver, "#Rewritten Prompt#:" in the prompt  {"instruction"}   the given prompt with one addition for the
                                                                    method asked (constraints, a more specific
                                                                    requirement, reasoning steps read off the
                                                                    reference, a mutant as erroneous code, a
                                                                    complexity bound); at ``evol_fail_rate``
                                                                    a failed evolution instead, as real teachers
                                                                    produce them: the prompt unchanged, the
                                                                    template's words copied, a refusal, or a
                                                                    text that is no task any more
    evolver, "#Task#:" in the prompt               {"solvable", "reason"}   yes when the text is about a problem
                                                                    the simulator knows and is no refusal
    conceptor, "### Snippet" + ```python block     {"concepts"}     ``concepts_of`` the snippet
    conceptor, "### Concepts"                      {"instruction"}  a category/difficulty line and the instruction
                                                                    of the known seed (``--knowledge``) whose
                                                                    concepts overlap most; for the category
                                                                    "program", that instruction asked as a
                                                                    program (``_program.program_instruction``);
                                                                    none: an honest text the simulator cannot
                                                                    solve
    either, asked anything else                    {"answer"}       the honest generic answer
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from codestill.data import BankProblem
from codestill.sim._code import last_python_block
from codestill.sim._plan import plan_of
from codestill.sim._program import asks_program, program_instruction
from codestill.sim._roles import Ask, Handler, generic, unit_interval
from codestill.sim._seeds import closest, concepts_of
from tools.mutants import plant_bug

GIVEN = re.compile(r"#\s*(?:The\s+)?Given Prompt\s*#:?\s*\n(.*?)\n\s*#\s*Rewritten Prompt\s*#", re.S | re.I)
_TASK = re.compile(r"#Task#:\s*\n(.*)\Z", re.S)
_SECTION = re.compile(r"^###\s*(Category|Difficulty|Concepts)\s*\n(.*?)(?=^###|\Z)", re.S | re.M | re.I)
_REFUSAL = re.compile(r"\b(I'm sorry|I cannot|I can't|as an AI)\b", re.I)
# Which WizardCoder method a prompt asks for, by the words its method line uses.
_METHODS = (("misdirection", re.compile(r"erroneous code", re.I)),
            ("complexity", re.compile(r"time or space complexity", re.I)),
            ("reasoning", re.compile(r"reasoning steps", re.I)),
            ("specific", re.compile(r"less common", re.I)),
            ("constraints", re.compile(r"constraints", re.I)))
_CONSTRAINTS = ("The function must not modify its arguments and must return a new value.",
                "Use only the Python standard library, and do not print anything at all.",
                "Give every parameter and the return value a precise type hint in the signature.",
                "Keep the function pure: no global state, no input reading and no printing.")
# A program reads its input and prints: only the constraints that do not forbid it.
_PROGRAM_CONSTRAINTS = tuple(c for c in _CONSTRAINTS if "print" not in c)
_SPECIFIC = ("Instead of any return type that merely works, return exactly the type the description implies, "
             "never None for a valid input.",
             "Rather than accepting loosely typed input, treat the arguments exactly as the signature types them.")
_COMPLEXITY = ("Your solution should run in time linear or near-linear in the size of its input and use little "
               "extra memory.",)
FAILURES = ("unchanged", "copied", "refusal", "lost")


def _pick(options: Sequence[str], key: str) -> str:
    return options[int(unit_interval(key) * len(options))]


def _method(text: str) -> str:
    return next((name for name, pattern in _METHODS if pattern.search(text)), "constraints")


def _addition(method: str, problem: BankProblem | None, key: str, program: bool = False) -> str:
    if method == "reasoning" and problem is not None:
        steps, _ = plan_of(problem.reference, problem.entry_point, int(unit_interval(key) * 4))
        return "Work it out in these steps:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    if method == "misdirection" and problem is not None:
        planted = plant_bug(problem.reference, key + "|misdirection")
        if planted is not None:
            # An untagged fence: a ```python block in a later prompt would read as "a solution".
            return ("Here is a piece of erroneous code that attempts the task; it has a bug and must not be "
                    f"trusted:\n\n```\n{planted[0].strip()}\n```")
    if method == "specific":
        return _pick(_SPECIFIC, key)
    if method == "complexity":
        return _pick(_COMPLEXITY, key)
    return _pick(_PROGRAM_CONSTRAINTS if program else _CONSTRAINTS, key)


def evolver(ask: Ask) -> dict:
    m = GIVEN.search(ask.last_user)
    if m is None:
        return judge(ask) if "#Task#:" in ask.last_user else generic(ask)
    parent = m.group(1).strip()
    method = _method(ask.last_user[: m.start()])
    key = f"{ask.seed}|{parent}|{method}|{ask.choice}"
    evolved = f"{parent}\n\n{_addition(method, ask.problem, key, asks_program(parent))}"
    if ask.evol_fail_rate > 0 and unit_interval(key + "|fail") < ask.evol_fail_rate:
        failure = _pick(FAILURES, key + "|kind")
        if failure == "unchanged":
            return {"instruction": parent}
        if failure == "copied":
            return {"instruction": f"#Rewritten Prompt#:\n{evolved}"}
        if failure == "refusal":
            return {"instruction": "I'm sorry, but I can't make this task harder without more context."}
        topic = ask.problem.entry_point.replace("_", " ") if ask.problem is not None else "this function"
        return {"instruction": f"Explain in a short essay why {topic} matters in software design."}
    return {"instruction": evolved}


def judge(ask: Ask) -> dict:
    m = _TASK.search(ask.last_user)
    text = m.group(1) if m else ask.last_user
    if _REFUSAL.search(text):
        return {"solvable": False, "reason": "The text is a refusal, not a task."}
    if ask.problem is None:
        return {"solvable": False, "reason": "The text states no function to write with inputs and outputs "
                                             "(the simulator knows no problem it is about)."}
    return {"solvable": True, "reason": f"It asks for the function {ask.problem.entry_point} with a clear contract."}


def _sections(text: str) -> dict[str, str]:
    return {k.lower(): v.strip() for k, v in _SECTION.findall(text)}


def conceptor(known: Sequence[tuple[BankProblem, tuple[str, ...]]]) -> Handler:
    """The conceptor over the seeds the simulator knows (each with its concepts, worked out once)."""

    def handle(ask: Ask) -> dict:
        if "### Snippet" in ask.last_user:
            code = last_python_block(ask.last_user)
            return {"concepts": list(concepts_of(code)) if code else []}
        parts = _sections(ask.last_user)
        if "concepts" not in parts:
            return generic(ask)  # neither of its two requests
        concepts = [c.strip(" -*\t") for c in re.split(r"[,\n]", parts["concepts"]) if c.strip(" -*\t")]
        category, difficulty = parts.get("category", "function"), parts.get("difficulty", "medium")
        problem = closest(concepts, known, f"{ask.seed}|{ask.choice}|{'|'.join(concepts)}")
        if problem is None:
            return {"instruction": f"Write a {category} that shows {', '.join(concepts) or 'some code'} at work. "
                                   "(The simulator knows no seed with these concepts, so it cannot solve this.)"}
        if category == "program":
            return {"instruction": program_instruction(problem, difficulty)}
        a = "An" if difficulty[:1].lower() in "aeiou" else "A"
        lead = f"{a} {difficulty} {category} task." if category == "function" else \
            f"{a} {difficulty} task (asked as a {category}; the simulator writes it as one function)."
        return {"instruction": f"{lead}\n\n{problem.instruction}"}

    return handle
