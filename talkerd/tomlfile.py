"""Reading TOML files and reporting validation errors the same way everywhere.

Every error names the file, then the field, then what was wrong: ``FILE: field.path: problem``.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from .errors import ConfigError

try:  # Python 3.11+
    import tomllib  # novermin (tomli below for 3.10)
except ModuleNotFoundError:  # Python 3.10 (JetPack 6)
    import tomli as tomllib  # type: ignore[no-redef]

TOMLDecodeError = tomllib.TOMLDecodeError


def read_toml(path: str | os.PathLike, what: str = "file") -> dict:
    """The parsed document; ``ConfigError`` for a missing, unreadable or malformed file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def describe(error: dict) -> str:
    """One pydantic error in words: unknown and missing keys by name, the rest with the bad value."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    if kind not in ("value_error", "assertion_error"):
        message += f" (got {error.get('input')!r})"
    return message.removeprefix("Value error, ")


def validation_error(exc: ValidationError, source: str) -> ConfigError:
    """A ``ConfigError`` with one ``source: field: problem`` line per error."""
    return ConfigError("\n".join(f"{source}: {field_path(e['loc'])}: {describe(e)}" for e in exc.errors()))
