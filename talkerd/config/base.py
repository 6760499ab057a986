"""What every config section shares: frozen models that forbid unknown keys, paths taken from the
config file's folder, lists without blank items."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    value = Path(os.path.expandvars(str(value))).expanduser()
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return Path(os.path.normpath(value))


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
"""A filesystem path; relative paths are taken from the config file's directory."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def no_blank_items(values: list[str]) -> list[str]:
    blank = [i for i, v in enumerate(values) if not v.strip()]
    if blank:
        raise ValueError(f"item {blank[0]} is blank")
    return [v.strip() for v in values]


Text = Annotated[str, AfterValidator(not_blank)]
"""Text that must not be blank; kept without its surrounding whitespace."""
TextList = Annotated[list[str], AfterValidator(no_blank_items)]
"""A list of texts none of which may be blank; each kept without its surrounding whitespace."""

