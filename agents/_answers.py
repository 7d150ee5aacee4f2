"""What each agent asks its model for: pydantic schemas whose field descriptions become the JSON
schema the model sees. Tolerant of extra fields (``extra="ignore"``): a model, or the simulated
teacher, may add fields of its own (the sim's planner sends ``kind``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from codestill.data import parse_quietly
from codestill.schemas import Critique, ModuleSpec, Plan, RejectReason
from codestill.structured import extract_code

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _parses(code: str) -> bool:
    try:
        parse_quietly(code)
    except (SyntaxError, ValueError):
        return False
    return True


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PlanAnswer(_Answer):
    steps: list[str] = Field(min_length=1, description="The plan: short, concrete steps in the order the "
                                                       "code carries them out, in words (no code).")
    rationale: str = Field("", description="Why this approach: the key idea and the edge cases it handles.")

    def to_plan(self, kind: Literal["forward", "backward"] = "forward") -> Plan:
        return Plan(steps=tuple(s.strip() for s in self.steps if s.strip()) or tuple(self.steps),
                    rationale=self.rationale, kind=kind)


class SpecAnswer(_Answer):
    name: str = Field(pattern=_IDENT, description="The function's name, a Python identifier.")
    signature: str = Field(description="The def line without its colon, with type hints, "
                                       "e.g. 'def is_prime(n: int) -> bool'.")
    description: str = Field("", description="One sentence: what the function returns for which input.")
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
    why: str = Field("", description="One short reason.")


class CoderAnswer(_Answer):
    code: str = Field(description="The complete, self-contained Python solution: imports, every helper, "
                                  "the main function. No tests, no example calls, no prints.")

    @field_validator("code")
    @classmethod
    def _code_out_of_prose(cls, code: str) -> str:
        """Models often wrap the code field in prose and a fence ("Here is the solution: ```python ...```");
        a field that does not parse but holds a fenced block that does is that block."""
        if "```" not in code or _parses(code):
            return code
        block = extract_code(code)
        if block is None or not block.strip() or not _parses(block):
            return code
        return block.rstrip("\n") + "\n"  # a source file ends with its newline, which the fence took
    explanation: str = Field("", description="A short explanation of how the code works.")
    references: list[ReferenceUse] = Field(default_factory=list,
                                           description="For each reference function shown: how you used it.")


class TestsAnswer(_Answer):
    __test__ = False  # not a pytest class
    tests: str = Field(description="Python test code: top-level assert statements, each comparing a call "
                                   "with its exact expected value.")
    entry_point: str | None = Field(None, description="The name of the function under test.")


class CriticAnswer(_Answer):
    verdict: Literal["accept", "repair", "replan", "reject"] = Field(
        description="accept: correct and well tested; repair: fixable bugs; replan: the approach is wrong; "
                    "reject: the task cannot or should not be done.")
    issues: list[str] = Field(default_factory=list, description="Concrete problems, one per item.")
    suggestion: str = Field("", description="What to change next, concretely.")
    reason: RejectReason | None = Field(None, description="With reject only: why, from the fixed list.")
    weak_tests: bool = Field(False, description="True if the tests are too weak to show the code is right.")

    def to_critique(self) -> Critique:
        """The answer as a record: a reject always has a reason ("unsolvable" if none was given),
        other verdicts none."""
        reason = (self.reason or "unsolvable") if self.verdict == "reject" else None
        return Critique(verdict=self.verdict, issues=tuple(i for i in self.issues if i.strip()),
                        suggestion=self.suggestion, reason=reason, weak_tests=self.weak_tests)
