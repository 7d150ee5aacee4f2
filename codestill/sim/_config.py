"""How the simulated teacher behaves: timing, planted bugs, injected faults."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["429", "500", "hang", "bad_json", "truncate"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "500", "hang", "bad_json", "truncate")


class SimConfig(BaseModel):
    """Settings of one simulator server. Everything random in its replies is keyed on ``seed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    latency_s: float = Field(0.0, ge=0, description="Time to first token.")
    tokens_per_s: float = Field(0.0, ge=0, description="Pace of the reply after the first token; 0 = instant.")
    bug_rate: float = Field(0.0, ge=0, le=1, description="Share of fresh coder answers with a planted bug.")
    fault_rate: float = Field(0.0, ge=0, le=1, description="Share of chat requests that get an injected fault.")
    faults: tuple[FaultKind, ...] = Field(FAULT_KINDS, min_length=1, description="The fault kinds drawn from.")
    hang_s: float = Field(600.0, gt=0, description="How long a 'hang' fault holds a request at most.")
    retry_after_ms: int = Field(200, ge=0, description="What a 429 fault tells the client to wait.")
    model: str = Field("codestill-sim", min_length=1, description="The one model id served.")
    tools: bool = Field(True, description="False: ignore tools / response_format and answer in prose.")
    knowledge: tuple[str, ...] = Field((), description="Seed JSONL files (``codestill seeds mine``) whose "
                                       "functions the simulator knows as problems, besides MBPP and HumanEval.")
    evol_fail_rate: float = Field(0.0, ge=0, le=1, description="Share of evolutions that fail (unchanged, "
                                  "template copied, refusal, task lost).")
    strong_tests: bool = Field(True, description="The tester adds edge cases and variants of the task's examples "
                                                 "(expected values from the reference); False: the task's tests only.")
    cache_dir: str | None = Field(None, description="A folder where the tester's worked-out tests are kept "
                                  "between runs (they depend only on the problem, the seed and the code).")

    def to_flags(self) -> list[str]:
        """The ``codestill sim serve`` flags that give this config (what ``serve_subprocess`` runs)."""
        return [
            "--seed", str(self.seed), "--latency", repr(self.latency_s), "--tokens-per-s", repr(self.tokens_per_s),
            "--bug-rate", repr(self.bug_rate), "--fault-rate", repr(self.fault_rate),
            "--faults", ",".join(self.faults), "--hang-s", repr(self.hang_s),
            "--retry-after-ms", str(self.retry_after_ms), "--model", self.model,
            *([] if self.tools else ["--no-tools"]), *([] if self.strong_tests else ["--no-strong-tests"]),
            "--evol-fail-rate", repr(self.evol_fail_rate), *(f for k in self.knowledge for f in ("--knowledge", k)),
            *(["--cache-dir", self.cache_dir] if self.cache_dir else []),
        ]
