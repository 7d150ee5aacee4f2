"""What each agent asks its model for: pydantic schemas whose field descriptions become the JSON
schema the model sees. Tolerant of extra fields (``extra="ignore"``): a model, or the simulated
teacher, may add fields of its own (the sim's planner sends ``kind``).

Plans, code and tests have a text form (``codestill.structured.TextForm``), the one every model writes
best and a server without tool calling still gets: a numbered list, a fenced ```python block with the
explanation as prose around it, a fenced block of asserts, "Input:"/"Output:" fenced pairs for a program's
stdin/stdout cases. ``text_format`` is what the prompt asks for (``prompts/format_*.md``), ``from_text``
reads it back; a JSON or tool-call answer is read as well.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from agents._prompts import prompt
from codestill.pysrc import parses
from codestill.schemas import Critique, IOCase, ModuleSpec, Plan, RejectReason, io_text
from codestill.structured import code_blocks, extract_code

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Text:
    """The text form's request: ``prompts/format_<FORM>.md``; brief (a repair after a cut-off reply):
    ``prompts/format_<FORM>_brief.md``."""

    FORM: ClassVar[str] = ""

    @classmethod
    def text_format(cls, brief: bool = False) -> str:
        return prompt(f"format_{cls.FORM}_brief" if brief else f"format_{cls.FORM}").strip()


# "1. Sort ...", "2) ...", "Step 3: ...", "- ...", "* ..." at the start of a line.
_STEP = re.compile(r"^\s*(?:(?:step\s*)?\d{1,2}\s*[.):]|[-*\u2022])\s+(.*\S)\s*$", re.I)
_RATIONALE = re.compile(r"^\s*\**\s*(?:rationale|why|reason(?:ing)?|key idea)\s*\**\s*[:\-]\s*(.*)$", re.I)
_PLACEHOLDER = re.compile(r"^\s*<[^<>]*>\s*\.?\s*$|^\.\.\.$")
_HEADING = re.compile(r"^\s*(?:#+\s*|\*\*)?\s*(?:plan|steps|the plan)\s*(?:\*\*)?\s*:?\s*$", re.I)


class PlanAnswer(_Text, _Answer):
    FORM: ClassVar[str] = "plan"
    steps: list[str] = Field(min_length=1, description="The plan: short, concrete steps in the order the "
                                                       "code carries them out, in words (no code).")
    rationale: str = Field(default="", description="Why this approach: the key idea and the edge cases it handles.")

    @classmethod
    def from_text(cls, text: str) -> dict[str, Any] | None:
        """Numbered (or bulleted) lines are the steps, a line's continuation joins its step; a
        "Rationale:" line, and what follows it, is the rationale. Code blocks are not steps."""
        steps: list[str] = []
        rationale: list[str] = []
        in_fence = in_rationale = False
        for line in text.splitlines():
            if line.strip().startswith("```"):
                in_fence = not in_fence
                continue
            if in_fence or _HEADING.match(line):
                continue
            if (m := _RATIONALE.match(line)) is not None:
                in_rationale = True
                rationale.append(m.group(1))
            elif in_rationale:
                rationale.append(line.strip())
            elif (m := _STEP.match(line)) is not None:
                if not _PLACEHOLDER.match(m.group(1)):  # "<the first step>": a form copied, not a step
                    steps.append(m.group(1).strip())
            elif steps and line.strip() and line[:1].isspace():
                steps[-1] += " " + line.strip()
        if not steps:
            return None
        return {"steps": steps, "rationale": " ".join(r for r in rationale if r).strip()}

    def to_plan(self, kind: Literal["forward", "backward"] = "forward") -> Plan:
        return Plan(steps=tuple(s.strip() for s in self.steps if s.strip()) or tuple(self.steps),
                    rationale=self.rationale, kind=kind)


class SpecAnswer(_Answer):
    name: str = Field(pattern=_IDENT, description="The function's name, a Python identifier.")
    signature: str = Field(description="The def line without its colon, with type hints, "
                                       "e.g. 'def is_prime(n: int) -> bool'.")
    description: str = Field(default="", description="One sentence: what the function returns for which input.")
    calls: list[str] = Field(default_factory=list, description="Names of the other modules this one calls.")


class Decomposition(_Answer):
    modules: list[SpecAnswer] = Field(default_factory=list, description="The function modules, helpers "
                                      "first and the main (entry point) function last.")

    def specs(self) -> tuple[ModuleSpec, ...]:
        return tuple(ModuleSpec(name=m.name, signature=m.signature, description=m.description)
                     for m in self.modules)

    def calls(self) -> dict[str, tuple[str, ...]]:
        """Which module calls which, restricted to the modules listed (no self-calls)."""
        names = {m.name for m in self.modules}
        return {m.name: tuple(dict.fromkeys(c for c in m.calls if c in names and c != m.name))
                for m in self.modules}


class ReferenceUse(_Answer):
    name: str = Field(description="The reference function's name.")
    use: Literal["reused", "adapted", "ignored"] = Field(
        description="reused: copied unchanged; adapted: changed to fit; ignored: not used.")
    why: str = Field(default="", description="One short reason.")


class CoderAnswer(_Text, _Answer):
    FORM: ClassVar[str] = "code"
    code: str = Field(description="The complete, self-contained Python solution: imports, every helper, "
                                  "the main function. No tests, no example calls, no prints.")

    @field_validator("code")
    @classmethod
    def _code_out_of_prose(cls, code: str) -> str:
        """Models often wrap the code field in prose and a fence ("Here is the solution: ```python ...```");
        a field that does not parse but holds a fenced block that does is that block."""
        if "```" not in code or parses(code):
            return code
        block = extract_code(code)
        if block is None or not block.strip() or not parses(block):
            return code
        return block.rstrip("\n") + "\n"  # a source file ends with its newline, which the fence took
    explanation: str = Field(default="", description="A short explanation of how the code works.")
    references: list[ReferenceUse] = Field(default_factory=list,
                                           description="For each reference function shown: how you used it.")

    @classmethod
    def from_text(cls, text: str) -> dict[str, Any] | None:
        """The program is the last complete block that parses and defines a function (later blocks of
        a reply are corrections; usage examples define nothing), else the last one that parses; the
        prose around the blocks is the explanation."""
        blocks = [b for b in code_blocks(text) if b.strip() and parses(b)]
        if not blocks:
            return None
        defining = [b for b in blocks if re.search(r"^(?:async\s+)?def\s|^class\s", b, re.M)]
        code = (defining or blocks)[-1]
        return {"code": code.rstrip("\n") + "\n", "explanation": _prose(text)}


class TestsAnswer(_Text, _Answer):
    __test__ = False  # not a pytest class
    FORM: ClassVar[str] = "tests"
    tests: str = Field(description="Python test code: top-level assert statements, each comparing a call "
                                   "with its exact expected value.")
    entry_point: str | None = Field(default=None, description="The name of the function under test.")

    @classmethod
    def from_text(cls, text: str) -> dict[str, Any] | None:
        """Every complete block with an assert, in order (a model may split its suite by function)."""
        blocks = [b.strip("\n") for b in code_blocks(text) if re.search(r"^\s*assert\b", b, re.M)]
        return {"tests": "\n\n".join(blocks) + "\n"} if blocks else None


class IOCaseAnswer(_Answer):
    input: str = Field(validation_alias=AliasChoices("input", "stdin"),
                       description="Exactly what the program reads from standard input.")
    output: str = Field(validation_alias=AliasChoices("output", "stdout", "expected_output"),
                        description="Exactly what the program must print to standard output.")

    @field_validator("input", "output")
    @classmethod
    def _as_text_file(cls, text: str) -> str:
        """Unix line ends, and a last line that ends: what a file on stdin holds, and how a block is read."""
        text = text.replace("\r\n", "\n")
        return text if not text or text.endswith("\n") else text + "\n"


class IOTestsAnswer(_Text, _Answer):
    """A program's tests: stdin/stdout cases. The text form is repeated pairs of an "Input:" line and
    a fenced block, then an "Output:" line and a fenced block (``prompts/format_io.md``); ``tests`` is
    that text again, which is how a suite is stored and shown back to the tester."""

    __test__ = False  # not a pytest class
    FORM: ClassVar[str] = "io"
    cases: list[IOCaseAnswer] = Field(min_length=1, description="The stdin/stdout cases, each an input and "
                                                                "the exact output expected for it.")

    @property
    def entry_point(self) -> None:
        """A program has no function under test (``TestsAnswer.entry_point``'s counterpart)."""
        return None

    @property
    def tests(self) -> str:
        return io_text(self.to_cases())

    def to_cases(self) -> tuple[IOCase, ...]:
        return tuple(IOCase(input=c.input, output=c.output) for c in self.cases)

    @classmethod
    def from_text(cls, text: str) -> dict[str, Any] | None:
        """Each fenced block after a line naming it input (input, stdin) or output (output, expected
        output, stdout) is that part of a case; an input followed by an output is a case. A block with
        no such line before it, an input with no output, and an output with no input are left out."""
        cases: list[dict[str, str]] = []
        label: str | None = None
        pending: str | None = None
        for kind, value in _io_parts(text):
            if kind == "label":
                label = value
                continue
            if label == "input":
                pending = value
            elif label == "output" and pending is not None:
                cases.append({"input": pending, "output": value})
                pending = None
            label = None  # each block needs its own label
        return {"cases": cases} if cases else None


# "Input:", "**Input (stdin):**", "### Case 2 - expected output", "Output 3:", at the start of a line,
# with no inline code after it.
_IO_LABEL = re.compile(r"^[\s#>*_\-]*(?:(?:case|test|example)\s*#?\s*\d*\W*)?(?:\d+[.)]\s*)?[*_]*\s*"
                       r"(input|stdin|standard input|expected output|expected|output|stdout|standard output)\b[^`]*$",
                       re.I)
_OPEN = re.compile(r"^[ \t]*(`{3,})[^`\n]*$")


def _io_parts(text: str) -> list[tuple[str, str]]:
    """("label", "input" | "output") and ("block", its text) in reply order; a fence may be longer than
    three backticks (its body holding ```), and an unclosed last block is no block."""
    out: list[tuple[str, str]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _OPEN.match(line)
        if fence is None:
            m = _IO_LABEL.match(line)
            if m is not None:
                out.append(("label", "input" if m.group(1).lower() in ("input", "stdin", "standard input")
                            else "output"))
            i += 1
            continue
        close = re.compile(r"^[ \t]*" + fence.group(1) + r"`*[ \t]*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), None)
        if end is None:
            break
        body = "\n".join(lines[i + 1:end])
        out.append(("block", body + "\n" if body else ""))
        i = end + 1
    return out


def _prose(text: str) -> str:
    """``text`` without its fenced blocks: what a reply says around its code."""
    out = re.sub(r"```[^\n]*\n.*?(?:\n```|```|$)", "", text, flags=re.S)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


_FIELD = re.compile(r"^\s*[*_#]*\s*(verdict|reason|weak[ _]tests|issues|suggestion)\s*[*_]*\s*:\s*[*_]*\s*(.*?)\s*$",
                    re.I)


class CriticAnswer(_Text, _Answer):
    FORM: ClassVar[str] = "verdict"
    verdict: Literal["accept", "repair", "replan", "reject"] = Field(
        description="accept: correct and well tested; repair: fixable bugs; replan: the approach is wrong; "
                    "reject: the task cannot or should not be done.")
    issues: list[str] = Field(default_factory=list, description="Concrete problems, one per item.")
    suggestion: str = Field(default="", description="What to change next, concretely.")
    reason: RejectReason | None = Field(default=None, description="With reject only: why, from the fixed list.")
    weak_tests: bool = Field(default=False, description="True if the tests are too weak to show the code is right.")

    @classmethod
    def from_text(cls, text: str) -> dict[str, Any] | None:
        """``Verdict: <word>`` lines and the rest (``prompts/format_verdict.md``). No verdict line, no
        answer: a verdict is never guessed from prose (an unread verdict is never an accept)."""
        fields: dict[str, Any] = {"issues": []}
        current = ""
        for line in text.splitlines():
            if (m := _FIELD.match(line)) is not None:
                current, value = m.group(1).lower().replace(" ", "_"), m.group(2).strip()
                if current == "issues":
                    fields["issues"] += [value] if value and value.lower() not in ("none", "-") else []
                elif current == "weak_tests":
                    fields["weak_tests"] = value.lower().startswith(("yes", "true"))
                elif current in ("verdict", "reason"):
                    word = re.match(r"[A-Za-z_]+", value)
                    if word and not (current == "reason" and word.group(0).lower() in ("none", "n")):
                        fields[current] = word.group(0).lower()
                else:
                    fields[current] = value
            elif current == "issues" and (item := re.match(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(.*\S)", line)):
                fields["issues"].append(item.group(1))
            elif current == "suggestion" and line.strip():
                fields["suggestion"] += " " + line.strip()
        return fields if "verdict" in fields else None

    def to_critique(self) -> Critique:
        """The answer as a record: a reject always has a reason ("unsolvable" if none was given),
        other verdicts none."""
        reason = (self.reason or "unsolvable") if self.verdict == "reject" else None
        return Critique(verdict=self.verdict, issues=tuple(i for i in self.issues if i.strip()),
                        suggestion=self.suggestion, reason=reason, weak_tests=self.weak_tests)
