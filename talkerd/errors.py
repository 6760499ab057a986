"""Errors with a stable code, a human message and the process exit code they map to.

Every failure a user or integrator can meet is one of these; the command-line entry points turn them
into one clear line on stderr and the documented exit code, never a stack trace.
"""
from __future__ import annotations


class ExitCode:
    """Process exit codes (sysexits.h where one fits). Documented in the README."""

    OK = 0
    FAILURE = 1  # the daemon (or a tool) said no
    USAGE = 2  # bad command line or malformed request
    NO_DAEMON = 3  # talkerctl: nothing listening on the control socket
    UNAVAILABLE = 69  # EX_UNAVAILABLE: a required component could not be loaded
    SOFTWARE = 70  # EX_SOFTWARE: an internal error
    CONFIG = 78  # EX_CONFIG: the configuration is invalid or does not fit the machine


class TalkerError(Exception):
    """Base error: ``code`` is stable (for scripts and the control protocol), ``message`` is for people."""

    code = "error"
    exit_code = ExitCode.FAILURE

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConfigError(TalkerError):
    """The configuration file is unreadable, invalid, or names something that does not exist."""

    code = "config_invalid"
    exit_code = ExitCode.CONFIG


class BudgetError(ConfigError):
    """The configured components do not fit in ``memory.budget_mb``."""

    code = "over_budget"


class ComponentUnavailable(TalkerError):
    """A device or model could not be opened or loaded; the daemon may carry on without it."""

    code = "component_unavailable"
    exit_code = ExitCode.UNAVAILABLE


class EngineError(TalkerError):
    """An inference engine failed to load or to run."""

    code = "engine_error"
    exit_code = ExitCode.UNAVAILABLE


class RequestError(TalkerError):
    """A malformed or unknown control request."""

    code = "bad_request"
    exit_code = ExitCode.USAGE
