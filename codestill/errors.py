"""The error hierarchy. Every error a user can cause says the cause and the fix in one line.

    CodestillError
      SandboxError
        EngineUnavailable   no Docker engine answers
        ImageMissing        the sandbox image is not built
        ImageBuildError     building the image failed
        SetupError          installing or starting what the sandbox needs failed

Failures of *untrusted code* are never exceptions: they are ``ExecResult`` statuses.
"""


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
