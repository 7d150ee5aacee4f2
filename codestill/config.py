"""One typed settings object, layered: defaults < TOML file < ``CODESTILL_*`` environment < CLI flags.

    codestill.toml (or --config FILE)      [llm]
                                           model = "openai:gpt-4o-mini"
    environment                            CODESTILL_LLM__MODEL=openai:qwen@http://gpu:8000/v1
    flags                                  codestill solve --model ...

Nested keys use ``__`` in the environment. ``explain_settings`` tells where each value came from
(``codestill config show``). Secrets are ``SecretStr``: shown masked, and ``Settings.record()``,
which is what run directories store, leaves them out.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from codestill.errors import ConfigError, first_problem
from codestill.schemas import ROLES, Limits

# Bump when the image recipe changes: the tag changes and `sandbox setup` builds anew.
IMAGE_RECIPE = "bookworm-py3-1"
DEFAULT_CONFIG_FILE = Path("codestill.toml")
ENV_PREFIX = "CODESTILL_"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class SandboxConfig(BaseModel):
    """How the Docker sandbox runs programs. Recorded in every run's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    docker_host: str | None = Field(default=None, description="Engine address; default: DOCKER_HOST or the local socket.")
    image: str = Field(default=f"codestill-sandbox:{IMAGE_RECIPE}", description="The sandbox image's tag.")
    base_image: str | None = Field(
        default=None, description="Build from this registry image (e.g. python:3.11-slim) instead of debootstrap."
    )
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_suite: str = "bookworm"
    pool_size: int = Field(default_factory=_cores, ge=1, description="Warm containers = CPU-bound runs at once.")
    cpus_per_container: float = Field(default=1.0, gt=0)
    memory_mb: int = Field(default=512, ge=64, description="Memory cgroup limit, swap included (no swap).")
    pids_limit: int = Field(default=128, ge=16, description="Processes and threads per container.")
    tmpfs_mb: int = Field(default=64, ge=16, description="Size of the writable /tmp.")
    shm_mb: int = Field(default=16, ge=1, description="Size of /dev/shm.")
    recycle_after: int = Field(default=1000, ge=1, description="Replace a container after this many runs.")
    infra_retries: int = Field(default=2, ge=0, description="Retries of a run hit by an infrastructure fault.")
    start_timeout_s: float = Field(default=60.0, gt=0, description="Deadline for starting one container.")
    api_timeout_s: float = Field(default=30.0, gt=0, description="Deadline for any other Docker API call.")
    limits: Limits = Limits()


# The default longest reply per role: room for a complete answer of each kind (a plan of 8 steps is
# ~250 tokens; the code and tests roles keep max_tokens' room for long programs and suites).
ROLE_MAX_TOKENS: dict[str, int] = {"planner": 512, "decomposer": 768, "critic": 512}


class LLMConfig(BaseModel):
    """How chat models are reached. See ``codestill.llm.make_chat_model`` for the spec forms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="openai:gpt-4o-mini", description="openai:<model>[@<base_url>] or hf:<id or dir>.")
    api_key: SecretStr | None = Field(
        default=None, description="Key for the endpoint. openai:<model> falls back to OPENAI_API_KEY; "
        "a custom base_url gets only this key (never your OpenAI key), else 'EMPTY'.")
    temperature: float = Field(default=0.2, ge=0)
    max_tokens: int | None = Field(default=2048, ge=1, description="Longest reply, in tokens.")
    timeout_s: float = Field(default=120.0, gt=0, description="Per-call timeout (each try).")
    max_retries: int = Field(default=4, ge=0, description="Client retries on 429 / 5xx / timeouts (backoff, Retry-After).")
    max_concurrency: int = Field(default=64, ge=1, description="Calls in flight at once per endpoint.")
    structured: Literal["auto", "tools", "json_schema", "prompt"] = Field(
        default="auto", description="How replies are made structured: tool calls, JSON schema, or prompt + parser.")
    repair_rounds: int = Field(default=1, ge=0, description="Re-asks after a reply that does not parse.")
    role_max_tokens: dict[str, int] = Field(
        default_factory=lambda: dict(ROLE_MAX_TOKENS),
        description="Longest reply per agent role, in tokens (over max_tokens for that role): a plan or a "
        "verdict needs few, and a local model that loops must not run on to max_tokens. A role not listed "
        "gets max_tokens.")

    @field_validator("role_max_tokens")
    @classmethod
    def _known_roles(cls, limits: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(limits) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}")
        if any(n < 1 for n in limits.values()):
            raise ValueError("a role's limit must be at least 1 token")
        return limits


class TracesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    path: Path = Field(default=Path(".codestill/traces.sqlite"), description="Trace store of interactive sessions.")


class MemoryConfig(BaseModel):
    """The function-module memory (``memory/``): where it lives, how it embeds, how it judges closeness."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(default=Path(".codestill/memory"), description="Embedded Chroma store (used when url is unset).")
    url: str | None = Field(default=None, description="A Chroma server (http://host:port) shared by several machines.")
    collection: str = Field(default="codestill-modules", description="Chroma collection name.")
    embedding: str = Field(
        default="st:all-MiniLM-L6-v2", description="st:<sentence-transformers model id or dir> (all-MiniLM-L6-v2 is "
        "the bundled offline copy) or openai:<model>[@<base_url>] for an embeddings endpoint.")
    api_key: SecretStr | None = Field(default=None, description="Key for an openai: embeddings endpoint.")
    min_score: float = Field(default=0.5, ge=0, le=1, description="Default least score a search returns.")
    lexical_weight: float = Field(default=0.1, ge=0, le=1, description="Share of a hit's relevance that is word "
                                  "overlap with the query (the rest: embedding similarity); 0 = similarity only.")
    hubness: float = Field(default=0.4, ge=0, le=1, description="Weight of the hubness discount (memory/_hubness.py): a "
                           "hit's score loses this share of how much denser its record's neighbourhood is than "
                           "the query's, so a helper in a crowd of look-alikes yields to one that stands apart; "
                           "0 = relevance alone.")
    near_duplicate: float = Field(
        default=0.5, ge=0, le=1, description="Similarity at or above which a module with an equal signature shape "
        "and the same code skeleton (names erased) is a near duplicate of a stored one, and is merged into it.")
    verified_only: bool = Field(default=True, description="Refuse modules that no sandbox run verified.")
    process: bool = Field(default=True, description="Batch runs (`codestill generate`, each Ray worker) serve the memory "
                          "from a child process, so the embedding model and Chroma's writes run beside the event "
                          "loop instead of taking turns with it; false: in the runner's process.")


class SolveConfig(BaseModel):
    """The solve graph: how many plans, how many loops, what a task may spend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plans: int = Field(default=1, ge=1, le=16, description="Plans sampled per task (CodePLAN); one coder+tester branch each.")
    plan_temperature: float = Field(default=0.7, ge=0, description="Sampling temperature of the planner when plans > 1.")
    max_repairs: int = Field(default=2, ge=0, description="Repair rounds per branch (critic -> coder or tester).")
    max_replans: int = Field(default=1, ge=0, description="Times the planner starts over after every branch failed.")
    without_plan: bool = Field(default=True, description="When no plan can be read from the planner's replies, one branch "
                               "works from the task alone (no plan is recorded for it) instead of rejecting the "
                               "task as model_failure: a weak model that cannot plan may still write code.")
    token_budget: int = Field(default=200_000, ge=1, description="Tokens (prompt + completion) one task may spend.")
    time_budget_s: float = Field(default=900.0, gt=0, description="Seconds of work one task may take (human pauses excluded).")
    memory_k: int = Field(default=1, ge=0, description="Modules retrieved per spec (AMR-Evol: top-1); 0 turns retrieval off.")
    memory_min_score: float = Field(default=0.5, ge=0, le=1,
                                    description="Least score (memory/README.md) of a retrieved module.")
    backward_plan: bool = Field(default=True, description="Write the backward plan of an accepted solution (plan task data).")
    gates: Literal["strict", "legacy"] = Field(
        default="strict", description="strict: the verification gates of graphs/_verify.py (suites judged by mutants, disputed "
        "tests re-derived, tests that replace the code refused, an unread critic never accepts, selection on the "
        "branches' common tests); legacy: wave 1's gates, kept only to measure against (bench/data_precision.py).")
    mutants: int = Field(default=10, ge=0, description="Mutants of a passing solution its suite must kill (0: no mutation gate).")
    min_mutation_score: float = Field(default=0.6, ge=0, le=1, description="Least share of those mutants the suite must kill; "
                                      "below 1 because some mutants are equivalent to the code and cannot be killed.")
    min_inputs: int = Field(default=3, ge=1, description="Least distinct inputs a suite must call the entry point with, each "
                            "compared with a concrete expected value.")
    tester_samples: int = Field(default=2, ge=1, le=4, description="Independent suites the tester writes for a branch's "
                                "first round (one shown the code, the others from the task alone), run as one: a wrong "
                                "value that the code and one suite share shows as a disagreement with another.")
    test_rounds: int = Field(default=2, ge=0, description="Times per branch the tester is asked again (its suite did not run, "
                             "was refused, let mutants live, or disputes the code), besides the coder's repairs.")
    critic_retries: int = Field(default=1, ge=0, description="Times an unreadable critic reply is asked again before the "
                                "attempt is rejected as model_failure (an unread verdict is never an accept).")
    selection_seed: int = Field(default=0, description="Seeds the random pick among branches that pass the same tests.")
    samples: int = Field(default=1, ge=1, le=16, description="Independent (response, tests) samples per plan (SelfCodeAlign): "
                         "each its own branch; the passers are kept in the trajectory and one is picked at random "
                         "(selection_seed). codestill export --all-passing exports every passer.")
    draft_as_final: bool = Field(default=True, description="When the memory returns nothing for a branch, its draft is the "
                                 "response (no second coder call for the same task and plan).")
    critic_on_failure: bool = Field(default=False, description="Ask the critic about a run that failed too. Off: a failing "
                                    "run goes straight to repair with its failures (the rules would turn the critic's "
                                    "accept or repair into that repair); its replan or reject is what is given up.")
    models: dict[str, str] = Field(default_factory=dict, description="Per-role chat model specs (planner, "
                                   "decomposer, coder, tester, critic); a role not named uses llm.model.")
    checkpoints: Path = Field(default=Path(".codestill/sessions.sqlite"), description="Interactive sessions' checkpoints.")


HEURISTICS = ("constraints", "specific", "reasoning", "misdirection", "complexity")


class EvolConfig(BaseModel):
    """Code Evol-Instruct: rounds, which heuristic each evolution uses, and what counts as a failed one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(default=3, ge=1, le=20, description="Evolution rounds (WizardCoder's best: 3).")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"constraints": 1.0, "specific": 1.0, "reasoning": 1.0, "misdirection": 1.0,
                                 "complexity": 0.25},
        description="Relative chance of each heuristic; the complexity one is down-weighted, as the paper asks.")
    min_changed_words: int = Field(default=3, ge=1, description="An evolution changing fewer words than this (inserted, "
                                   "deleted or replaced) barely differs from its parent and is dropped.")
    judge: bool = Field(default=True, description="Ask the model whether each evolution is still a solvable task.")
    seed: int = Field(default=0, description="Seeds the choice of heuristic per instruction and round.")
    concurrency: int | None = Field(default=None, ge=1, description="Lineages evolved at once; unset: llm.max_concurrency "
                                    "(every connection to the model server has work).")

    @field_validator("weights")
    @classmethod
    def _known(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(HEURISTICS))
        if unknown:
            raise ValueError(f"unknown heuristic(s) {', '.join(unknown)}; the heuristics are {', '.join(HEURISTICS)}")
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("weights must be >= 0 and at least one > 0")
        return weights


class SelfAlignConfig(BaseModel):
    """SelfCodeAlign's instruction generation: categories, difficulties and the few-shot examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: dict[str, float] = Field(default_factory=lambda: {"function": 0.5, "class": 0.25, "program": 0.25},
                                         description="Task category shares (the paper's 50/25/25).")
    difficulties: tuple[str, ...] = Field(default=("easy", "medium", "hard"), min_length=1,
                                          description="Difficulties, drawn uniformly.")
    shots: int = Field(default=8, ge=0, le=8, description="Few-shot examples per call (the paper: 8).")
    per_seed: int = Field(default=1, ge=1, description="Instructions written per seed.")
    seed: int = Field(default=0, description="Seeds the draws of examples, category and difficulty.")
    concurrency: int | None = Field(default=None, ge=1, description="Seeds worked on at once; unset: llm.max_concurrency "
                                    "(every connection to the model server has work).")


class Settings(BaseSettings):
    """Everything configurable. Build it with ``load_settings``; every run records ``record()``."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    llm: LLMConfig = LLMConfig()
    sandbox: SandboxConfig = SandboxConfig()
    traces: TracesConfig = TracesConfig()
    memory: MemoryConfig = MemoryConfig()
    solve: SolveConfig = SolveConfig()
    evol: EvolConfig = EvolConfig()
    selfalign: SelfAlignConfig = SelfAlignConfig()
    runs_dir: Path = Field(default=Path("runs"), description="Where batch runs put their run directories.")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges the layers itself, so it can also say where each value came from.
        return (init_settings,)

    def record(self) -> dict[str, Any]:
        """The settings as run directories store them: JSON, with every secret left out."""
        return _drop_secrets(self, self.model_dump(mode="json"))


def _drop_secrets(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = type(model).model_fields
    for name, value in dumped.items():
        attr = getattr(model, name)
        # A secret field is left out even when unset: a record should not even say there is a key slot.
        if isinstance(attr, SecretStr) or (name in fields and "SecretStr" in str(fields[name].annotation)):
            continue
        out[name] = _drop_secrets(attr, value) if isinstance(attr, BaseModel) else value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file or pass another with --config") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror}); check the path given to --config") from None


def _layers(config_file: Path | None, flags: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The layers from lowest to highest priority, each a nested dict of what it sets."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"{config_file}: no such settings file; check the path given to --config")
    path = config_file or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    env = EnvSettingsSource(Settings, env_prefix=ENV_PREFIX, env_nested_delimiter="__", case_sensitive=False)
    return [
        (f"file {path}", _read_toml(path) if path else {}),
        ("env", env()),
        ("flag", _nest(flags)),
    ]


def _nest(flags: Mapping[str, Any]) -> dict[str, Any]:
    """{"llm.model": "x"} -> {"llm": {"model": "x"}}; flags left unset (None) set nothing."""
    out: dict[str, Any] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(config_file: Path | None = None, flags: Mapping[str, Any] | None = None) -> Settings:
    """Defaults < ``config_file`` (else ./codestill.toml if present) < CODESTILL_* env < ``flags``.

    ``flags`` maps dotted keys to values, e.g. ``{"llm.model": "openai:x@http://h/v1"}``.
    """
    merged: dict[str, Any] = {}
    layers = _layers(config_file, flags or {})
    for _, layer in layers:
        merged = _merge(merged, layer)
    try:
        return Settings(**merged)
    except ValidationError as e:
        raise ConfigError(_explain_validation(e, layers)) from None


def _explain_validation(e: ValidationError, layers: list[tuple[str, dict[str, Any]]]) -> str:
    dotted, msg = first_problem(e)
    where = next((name for name, layer in reversed(layers) if _has(layer, dotted)), "default")
    hint = {"env": f"fix or unset {ENV_PREFIX}{dotted.upper().replace('.', '__')}",
            "flag": "fix the flag", "default": "this is a bug: please report it"}.get(where, f"fix it in {where[5:]}")
    return f"setting {dotted} (from {where}): {msg}; {hint}"


def _has(layer: Mapping[str, Any], dotted: str) -> bool:
    node: Any = layer
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _leaves(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _leaves(value, key + ".")
        else:
            yield key, value


def explain_settings(config_file: Path | None = None,
                     flags: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(key, value as shown, source) for every setting; secrets masked, never shown."""
    settings = load_settings(config_file, flags)
    layers = _layers(config_file, flags or {})
    rows = []
    for key, value in _leaves(settings):
        source = next((name for name, layer in reversed(layers) if _has(layer, key)), "default")
        if isinstance(value, SecretStr):
            shown = "******** (set)" if value.get_secret_value() else "(empty)"
        else:
            shown = "(not set)" if value is None else str(value)
        rows.append((key, shown, source))
    return rows
