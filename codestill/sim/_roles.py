"""What each agent role gets back: an answer dict under the record field names of ``codestill.schemas``.

    planner     {"steps", "rationale", "kind"}      read off the reference's AST (or, backward, off a
                                                    ```python block in the last user message)
    decomposer  {"modules": [{"name", "signature", "description"}]}   the reference's top-level functions
    coder       {"code", "explanation"}             the reference; one function for a "module: <name>" line;
                                                    a planted bug (bug_rate) only in a fresh full solution; for a
                                                    program task (``_program.asks_program``) the same code as a
                                                    script that reads the arguments and prints the result
    tester      {"tests", "entry_point"}            the bank's tests, then (strong_tests) edge cases and variants
                                                    of its examples, checked against the reference (``_strong``);
                                                    for a known seed, calls worked out by running it (``_seeds``)
                {"cases": [{"input", "output"}]}    for a program task: those calls as stdin/stdout cases, the
                                                    outputs worked out by running the reference (``Ask.io_cases``)
    critic      {"verdict", "issues", "suggestion"} from the last "status: <status>" line in the prompt
    unknown     {"code", "explanation"} | {"plan"}  a plain chat request (no codestill system line, no schema)
                                                    about a known problem, as a benchmark harness or a student
                                                    prompt sends it: the coder's answer, or a numbered plan
                                                    when the last user message asks to write a plan
    evolver, conceptor                              see ``_instruct``
    (realistic profile)                             planner, coder, tester, critic err at ``Ask.rates``: ``_teacher``
    others      {"answer"}                          an honest "no such behaviour"

``default_handlers()`` builds the registry afresh for each app; nothing here holds state. These are the
answer key (the default profile); ``_teacher.handlers`` wraps them to err at ``Ask.rates`` (the
realistic profile).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from codestill.data import BankProblem
from codestill.sim._code import last_python_block, module_source, modules_of, stub
from codestill.sim._config import TeacherRates
from codestill.sim._plan import plan_of
from codestill.sim._program import asks_program, script
from codestill.sim._strong import with_extra
from tools.mutants import plant_bug

NO_REFERENCE = "the simulator has no reference for this task"
_MODULE = re.compile(r"^[ \t]*module:[ \t]*([A-Za-z_]\w*)[ \t]*$", re.M)
_STATUS = re.compile(r"^status: (\w+)[ \t]*$", re.M)
# "Write a step-by-step plan ...", "Please outline a plan ...": a plain request for a plan, not code.
_PLAN_REQUEST = re.compile(
    r"^\W*(?:please\s+)?(?:write|give|draft|outline|propose|make|create|sketch)\b[^\n]{0,80}?\bplans?\b", re.I)
ANSWER_KEY = TeacherRates()  # the default profile: no role ever errs
_FAILING = frozenset({"failed", "error", "timeout", "oom", "killed"})
_ENTRY_HINTS = (
    re.compile(r"entry[ _-]?point\W{0,4}([A-Za-z_]\w*)", re.I),
    re.compile(r"\bnamed\s+`?([A-Za-z_]\w*)", re.I),
    re.compile(r"\bdef\s+([A-Za-z_]\w*)\s*\("),
    re.compile(r"\b(?:function|method)\s+`([A-Za-z_]\w*)"),
    re.compile(r"`([A-Za-z_]\w*)\("),
)
_SUGGESTIONS = {
    "failed": "Fix the logic so the failing tests pass: compare each failing assert's expected value with what "
              "the code returns for that input.",
    "error": "Fix the error the program raises (see the message and the stderr tail), then re-check the logic.",
    "timeout": "The program ran past its time limit: use a faster algorithm and make sure every loop ends.",
    "oom": "The program ran out of memory: avoid building large intermediate collections.",
    "killed": "The program was killed: do not start background processes or write unbounded output.",
}


@dataclass(frozen=True)
class Ask:
    """One choice of one request, as a role handler sees it."""

    role: str
    problem: BankProblem | None
    user_text: str  # every user message, joined
    last_user: str
    choice: int  # index among the request's n choices
    style: int  # phrasing variant: depends on seed, the request's seed and the choice
    seed: int
    bug_rate: float
    structured: bool = False  # the request asks for a schema (tools, response_format, marked prompt)
    extra_tests: str = ""  # the tester's own asserts for this problem (``_strong``), worked out by the app
    evol_fail_rate: float = 0.0  # share of evolutions that fail (``_instruct``)
    rates: TeacherRates = ANSWER_KEY  # how often each role errs (``_teacher``); all 0: never
    probed: tuple[tuple[str, str], ...] = ()  # (expression, value) of a mutant run for the tester (``_teacher``)
    io_cases: tuple[tuple[str, str], ...] = ()  # (stdin, stdout) of a program task, for the tester (``_program``)


Handler = Callable[[Ask], dict]


def unit_interval(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def entry_hint(ask: Ask) -> str:
    if ask.problem is not None:
        return ask.problem.entry_point
    for pattern in _ENTRY_HINTS:
        m = pattern.search(ask.user_text)
        if m:
            return m.group(1)
    return "solution"


def planner(ask: Ask) -> dict:
    code = last_python_block(ask.last_user)
    if code is not None:
        entry = ask.problem.entry_point if ask.problem is not None else None
        steps, rationale = plan_of(code, entry, ask.style, backward=True)
        return {"steps": list(steps), "rationale": rationale, "kind": "backward"}
    if ask.problem is None:
        name = entry_hint(ask)
        steps = [f"Work out the inputs, the output and the edge cases of {name} from the task.",
                 f"Write {name} to compute the result directly.", "Check it against the task's examples."]
        return {"steps": steps, "rationale": f"Generic steps: {NO_REFERENCE}.", "kind": "forward"}
    steps, rationale = plan_of(ask.problem.reference, ask.problem.entry_point, ask.style)
    return {"steps": list(steps), "rationale": rationale, "kind": "forward"}


def decomposer(ask: Ask) -> dict:
    code = last_python_block(ask.last_user)
    if code is None and ask.problem is not None:
        code = ask.problem.reference
    if code is None:
        name = entry_hint(ask)
        return {"modules": [{"name": name, "signature": f"def {name}(*args)", "description": NO_REFERENCE + "."}]}
    return {"modules": [{"name": n, "signature": s, "description": d} for n, s, d in modules_of(code)]}


def coder(ask: Ask) -> dict:
    m = _MODULE.search(ask.last_user)
    p = ask.problem
    if p is None:
        name = m.group(1) if m else entry_hint(ask)
        return {"code": stub(name), "explanation": f"No code: {NO_REFERENCE}, so {name} only says so."}
    steps = plan_of(p.reference, p.entry_point, ask.style)[0]
    if m:
        code = module_source(p.reference, m.group(1))
        if code is None:
            return {"code": stub(m.group(1)), "explanation": f"No code: the reference has no {m.group(1)}."}
        return {"code": code, "explanation": f"The module {m.group(1)} with the imports it uses."}
    repair = any(s in _FAILING for s in _STATUS.findall(ask.user_text))
    key = f"{ask.seed}|{p.id}|{ask.choice}"
    program = asks_program(ask.user_text)
    if not repair and ask.bug_rate > 0 and unit_interval(key) < ask.bug_rate:
        planted = plant_bug(p.reference, key + "|mutation")
        if planted is not None:
            code = script(planted[0], p.entry_point) if program else planted[0]
            return {"code": code, "explanation": " ".join(steps)}
    return {"code": script(p.reference, p.entry_point) if program else p.reference, "explanation": " ".join(steps)}


def tester(ask: Ask) -> dict:
    if ask.problem is None:
        return {"tests": "", "entry_point": entry_hint(ask)}
    if asks_program(ask.user_text):
        return {"cases": [{"input": i, "output": o} for i, o in ask.io_cases]}
    return {"tests": with_extra(ask.problem.tests.code, ask.extra_tests), "entry_point": ask.problem.entry_point}


def critic(ask: Ask) -> dict:
    found = list(_STATUS.finditer(ask.user_text))
    if not found:
        return {"verdict": "repair", "issues": ["no test results were given"],
                "suggestion": "Run the code against its tests and show me the result."}
    status = found[-1].group(1)
    if status == "passed":
        return {"verdict": "accept", "issues": [], "suggestion": ""}
    issues, message = [], ""
    for line in ask.user_text[found[-1].end():].splitlines():
        if line.startswith("- "):
            issues.append(line[2:].strip())
        elif issues or (line.strip() and not line.startswith(("tests: ", "message: "))):
            break  # e.g. "stderr (tail):" or the prompt's next section: the test lines are over
        elif line.startswith("message: "):
            message = line.removeprefix("message: ").strip()
    if not issues:
        issues = [message or f"the program's status is {status}"]
    suggestion = _SUGGESTIONS.get(status, "Fix the failure reported above and run the tests again.")
    return {"verdict": "repair", "issues": issues, "suggestion": suggestion}


def generic(ask: Ask) -> dict:
    return {"answer": f"The codestill simulator (not a language model) has no {ask.role} behaviour; it answers "
                      "the planner, decomposer, coder, tester and critic from a bank of MBPP and HumanEval "
                      "reference problems."}


def assistant(ask: Ask) -> dict:
    """The unknown role: what a code model answers to a plain prompt about a problem it knows.

    Benchmark harnesses (``codestill eval``) and students send no codestill system line and ask for
    no schema: they want a ```python block, or for a "write a plan" request a numbered plan. A
    request that asks for a schema, or about no known problem, still gets the honest generic answer.
    """
    if ask.problem is None or ask.structured:
        return generic(ask)
    if _PLAN_REQUEST.search(ask.last_user):
        steps, _ = plan_of(ask.problem.reference, ask.problem.entry_point, ask.style)
        return {"plan": "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))}
    return coder(ask)


def default_handlers() -> dict[str, Handler]:
    """A fresh role -> handler registry of the solve graph's roles; roles not in it get ``generic``
    (the app adds the evolver and the conceptor, ``_instruct``)."""
    return {"planner": planner, "decomposer": decomposer, "coder": coder, "tester": tester, "critic": critic,
            "unknown": assistant}
