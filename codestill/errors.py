"""The error hierarchy. Every error a user can cause says the cause and the fix in one line.

    CodestillError
      SandboxError
        EngineUnavailable   no Docker engine answers
        ImageMissing        the sandbox image is not built
        ImageBuildError     building the image failed
        SetupError          installing or starting what the sandbox needs failed
      ConfigError           a settings file or value is wrong
      RecordError           a records file (JSON / JSONL) is malformed
        SchemaVersionError  it was written with another schema_version
      LLMError              a chat model cannot be used
        MissingCredentials  no API key where the endpoint needs one
        ModelUnreachable    the model server does not answer
        UnknownModel        the server does not serve that model
        BadModelSpec        the model spec string is not understood
      ModelCallError        one model call failed after the client's retries (callers record it as a
                            failed step; ``llm.py`` turns every provider error into this or an LLMError)
      TraceStoreError       a trace store is missing, foreign, or has no such run
        ViewerError         the trace viewer cannot serve (its port is taken)
        TraceExportError    traces cannot be exported, or an exported file cannot be read back
      ReplayError           a run cannot be replayed (not a solve run, or its trace lacks what replay needs)
        ReplayMismatch      the replayed graph asked for a call the recording does not hold
      InputError            a seed / inputs file cannot be used at all
      RunDirError           the run directory cannot hold this run (another run's, or in use)
      LedgerError           the run directory's ledger cannot be opened or written
      SessionError          a session cannot be found, resumed or finished
      TrainingError         a student, its data or a training run cannot be used
      ExportError           a run cannot be exported as SFT data
      MemoryStoreError      the module memory is missing, corrupt, in use, or its server is down
        EmbeddingError      the embedding model cannot be loaded or reached
      SeedMiningError       the paths to mine are missing or hold no Python code
        TypecheckError      the seeds' type checker (Pyright) cannot be run

Failures of *untrusted code* are never exceptions: they are ``ExecResult`` statuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def first_problem(error: ValidationError) -> tuple[str, str]:
    """A pydantic error's first problem as (dotted location, message): what a one-line error shows."""
    err = error.errors()[0]
    return ".".join(str(p) for p in err["loc"]), str(err["msg"]).removeprefix("Value error, ")


class CodestillError(Exception):
    """Base class: the message is meant to be shown to a user as is."""


class SandboxError(CodestillError):
    """The execution sandbox cannot be used."""


class EngineUnavailable(SandboxError):
    """No Docker engine answers."""


class ImageMissing(SandboxError):
    """The sandbox image is not built."""


class ImageBuildError(SandboxError):
    """Building the sandbox image failed."""


class SetupError(SandboxError):
    """Installing or starting a part of the sandbox failed."""


class ConfigError(CodestillError):
    """A settings file or value is wrong."""


class RecordError(CodestillError):
    """A records file (JSON / JSONL) cannot be read."""


class SchemaVersionError(RecordError):
    """A record was written with another ``schema_version`` than this codestill reads."""


class LLMError(CodestillError):
    """A chat model cannot be used. Failures of one *call* (a bad reply) are results, not this."""


class MissingCredentials(LLMError):
    """No API key where the endpoint needs one."""


class ModelUnreachable(LLMError):
    """The model server does not answer."""


class UnknownModel(LLMError):
    """The server answers but does not serve the model asked for."""


class BadModelSpec(LLMError):
    """The model spec string is not understood."""


class TraceStoreError(CodestillError):
    """A trace store cannot be opened or read: missing, not a codestill trace store, or no such run."""


class ViewerError(TraceStoreError):
    """`codestill ui` cannot serve: the address or port is taken or not this machine's."""


class MemoryStoreError(CodestillError):
    """The function-module memory cannot be used: missing, corrupt, in use by another process, built
    with other embeddings, or its Chroma server does not answer."""


class EmbeddingError(MemoryStoreError):
    """The embedding model cannot be loaded or its endpoint does not answer."""


class TrainingError(CodestillError):
    """A training run cannot start or go on: a student that is not a causal LM, a chat template that does
    not render its prompt as a prefix of the conversation, no record short enough to train on, or an output
    directory holding a run with another configuration."""


class ExportError(CodestillError):
    """A batch run cannot be exported as SFT data: no run directory, no trajectories file, no accepted
    trajectory, nothing left after the filters, or an output folder that is not an earlier export."""


class SeedMiningError(CodestillError):
    """The paths given cannot be mined: missing, or without Python files."""


class TypecheckError(SeedMiningError):
    """Pyright was asked for and cannot be run, or gave no report."""


class ModelCallError(CodestillError):
    """One model call failed after the client's own retries: a rate limit, a server error, a timeout, a
    refused request. Transient or particular to the call, so a caller records it (a failed step) and goes
    on; failures every later call would repeat are ``LLMError``s instead. ``status`` is the HTTP status
    where the server sent one, ``detail`` its message, ``timed_out`` whether the call ran out of time."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "", timed_out: bool = False):
        super().__init__(message)
        self.status = status
        self.detail = detail or message
        self.timed_out = timed_out


class TraceExportError(TraceStoreError):
    """Traces cannot be exported, or an exported file cannot be read back."""


class ReplayError(CodestillError):
    """A run cannot be replayed: it is not a solve run, or its trace lacks what a replay needs."""


class ReplayMismatch(ReplayError):
    """The replayed graph asked for an LLM call or a memory search that the recording does not hold."""


class InputError(CodestillError):
    """The inputs file cannot be used at all (missing, empty, or bad lines under ``--strict``)."""


class RunDirError(CodestillError):
    """The run directory cannot hold this run (another run's, or in use)."""


class LedgerError(CodestillError):
    """The run directory's ledger cannot be opened or written."""


class SessionError(CodestillError):
    """A session cannot be found, resumed or finished."""
