"""How the simulated teacher behaves: timing, planted bugs, injected faults, how often it errs (the
teacher profile and its per-role rates, ``TeacherRates``) and which real server it acts as (``Server``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal["429", "500", "hang", "bad_json", "truncate"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "500", "hang", "bad_json", "truncate")
Teacher = Literal["default", "realistic"]
TEACHERS: tuple[Teacher, ...] = ("default", "realistic")
# Which real server's handling of tools / response_format the simulator copies (``SimConfig.server``).
Server = Literal["sim", "openai", "vllm", "vllm-no-tool-parser", "transformers-serve"]
SERVERS: tuple[Server, ...] = ("sim", "openai", "vllm", "vllm-no-tool-parser", "transformers-serve")


@dataclass(frozen=True)
class TeacherRates:
    """How often each role errs (``codestill.sim._teacher``); all 0: the answer key of the default profile."""

    test_flaw_rate: float = 0.0
    code_flaw_rate: float = 0.0
    bend_rate: float = 0.0
    critic_flaw_rate: float = 0.0
    plan_flaw_rate: float = 0.0
    stubborn_rate: float = 0.0

    @property
    def errs(self) -> bool:
        return any(v > 0 for v in vars(self).values())


# What a rate left unset (None) is in each profile.
PROFILES: dict[Teacher, TeacherRates] = {
    "default": TeacherRates(),
    # Above the floors (a third of suites, a quarter of first answers, a fifth of critiques) with
    # room to spare, so that a sample of a hundred problems does not fall below them by chance.
    "realistic": TeacherRates(test_flaw_rate=0.4, code_flaw_rate=0.3, bend_rate=0.5, critic_flaw_rate=0.25,
                              plan_flaw_rate=0.2, stubborn_rate=0.25),
}
RATE_FLAGS = {"test_flaw_rate": "--test-flaw-rate", "code_flaw_rate": "--code-flaw-rate", "bend_rate": "--bend-rate",
              "critic_flaw_rate": "--critic-flaw-rate", "plan_flaw_rate": "--plan-flaw-rate",
              "stubborn_rate": "--stubborn-rate"}


def _rate(description: str) -> float | None:
    return Field(default=None, ge=0, le=1, description=description + " None: the profile's (default 0; realistic: see "
                 "``PROFILES``). Given, it applies in either profile.")


class SimConfig(BaseModel):
    """Settings of one simulator server. Everything random in its replies is keyed on ``seed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    latency_s: float = Field(default=0.0, ge=0, description="Time to first token.")
    tokens_per_s: float = Field(default=0.0, ge=0, description="Pace of the reply after the first token; 0 = instant.")
    bug_rate: float = Field(default=0.0, ge=0, le=1, description="Share of fresh coder answers with a planted bug.")
    fault_rate: float = Field(default=0.0, ge=0, le=1, description="Share of chat requests that get an injected fault.")
    faults: tuple[FaultKind, ...] = Field(default=FAULT_KINDS, min_length=1, description="The fault kinds drawn from.")
    hang_s: float = Field(default=600.0, gt=0, description="How long a 'hang' fault holds a request at most.")
    retry_after_ms: int = Field(default=200, ge=0, description="What a 429 fault tells the client to wait.")
    model: str = Field(default="codestill-sim", min_length=1, description="The one model id served.")
    tools: bool = Field(default=True, description="False: ignore tools / response_format and answer in prose (the same as "
                        "server='transformers-serve').")
    server: Server = Field(default="sim", description="The real server whose handling of tools and response_format is "
                           "copied: sim, openai, vllm: tool calls (named, auto, required) and json_schema honoured; "
                           "vllm-no-tool-parser (vllm serve without --enable-auto-tool-choice --tool-call-parser): "
                           "any tool_choice but 'none' is refused with HTTP 400, json_schema honoured; "
                           "transformers-serve: tools and response_format ignored, prose answers.")
    knowledge: tuple[str, ...] = Field(default=(), description="Seed JSONL files (``codestill seeds mine``) whose "
                                       "functions the simulator knows as problems, besides MBPP and HumanEval.")
    evol_fail_rate: float = Field(default=0.0, ge=0, le=1, description="Share of evolutions that fail (unchanged, "
                                  "template copied, refusal, task lost).")
    strong_tests: bool = Field(default=True, description="The tester adds edge cases and variants of the task's examples "
                                                 "(expected values from the reference); False: the task's tests only.")
    cache_dir: str | None = Field(default=None, description="A folder where the tester's worked-out tests are kept "
                                  "between runs (they depend only on the problem, the seed and the code).")

    teacher: Teacher = Field(default="default", description="default: the answer key (tests from the reference, a critic "
                             "that follows the status line, repairs that return the reference); realistic: a "
                             "teacher that errs as real ones do, at the rates below (``codestill.sim._teacher``).")
    test_flaw_rate: float | None = _rate(
        "Share of fresh tester answers that are flawed (wrong expected values, tautologies, shape-only checks, "
        "uncalled test functions, no call of the entry point, a syntax error, a single assert); realistic 0.4.")
    code_flaw_rate: float | None = _rate(
        "Share of fresh coder answers that are flawed (hard-coded given tests, a planted bug, prose around the "
        "code, a misnamed entry point), besides ``bug_rate``; realistic 0.3.")
    bend_rate: float | None = _rate(
        "Share of repairs with failing asserts shown that bend the previous code to those asserts (special "
        "cases) instead of fixing it; realistic 0.5.")
    critic_flaw_rate: float | None = _rate(
        "Share of critic replies that are wrong (accept whatever the status), unreadable (no valid verdict) or "
        "off the reject taxonomy; realistic 0.25.")
    plan_flaw_rate: float | None = _rate("Share of plans that are vague (one or two generic steps); realistic 0.2.")
    stubborn_rate: float | None = _rate(
        "Share of testers asked again over a dispute (their asserts failed against the solution) that repeat "
        "their previous tests verbatim; realistic 0.25.")

    @model_validator(mode="after")
    def _tools_agree(self) -> SimConfig:
        # tools=False is the older spelling of a server that ignores tools; with another server it contradicts it
        if not self.tools and self.server not in ("sim", "transformers-serve"):
            raise ValueError(f"tools=False (--no-tools) means server='transformers-serve', not {self.server!r}; "
                             "give one of them")
        return self

    @property
    def profile(self) -> Server:
        """The server acted as, ``tools=False`` read as "transformers-serve"."""
        return "transformers-serve" if not self.tools else self.server

    @property
    def tool_calls(self) -> bool:
        """Does the server answer a request with tools with a tool call (vllm-no-tool-parser: with a 400)?"""
        return self.profile in ("sim", "openai", "vllm")

    @property
    def response_formats(self) -> bool:
        """Does the server honour ``response_format`` (json_schema, json_object)?"""
        return self.profile != "transformers-serve"

    def rates(self) -> TeacherRates:
        """The rates in effect: each one given, else the profile's."""
        profile = PROFILES[self.teacher]
        return TeacherRates(**{name: getattr(profile, name) if getattr(self, name) is None else getattr(self, name)
                               for name in RATE_FLAGS})

    def to_flags(self) -> list[str]:
        """The ``codestill sim serve`` flags that give this config (what ``serve_subprocess`` runs)."""
        return [
            "--seed", str(self.seed), "--latency", repr(self.latency_s), "--tokens-per-s", repr(self.tokens_per_s),
            "--bug-rate", repr(self.bug_rate), "--fault-rate", repr(self.fault_rate),
            "--faults", ",".join(self.faults), "--hang-s", repr(self.hang_s),
            "--retry-after-ms", str(self.retry_after_ms), "--model", self.model,
            *([] if self.tools else ["--no-tools"]), *([] if self.server == "sim" else ["--server", self.server]),
            *([] if self.strong_tests else ["--no-strong-tests"]),
            "--evol-fail-rate", repr(self.evol_fail_rate), *(f for k in self.knowledge for f in ("--knowledge", k)),
            *([] if self.teacher == "default" else ["--teacher", self.teacher]),
            *(f for name, flag in RATE_FLAGS.items() if getattr(self, name) is not None
              for f in (flag, repr(getattr(self, name)))),
            *(["--cache-dir", self.cache_dir] if self.cache_dir else []),
        ]
