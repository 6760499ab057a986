"""Engine manifests: what an engine folder under ``engines.dir`` promises, validated by pydantic.

A manifest names the ONNX file and its sha256, the inputs with the min/opt/max shapes that become the
TensorRT optimization profile, the outputs, the precision to build with and a memory estimate for the
planner. ``load_manifest`` turns every problem into a ``ConfigError`` naming the file and the field.
The same shape checks run on both backends (``check_feeds``), so a request that TensorRT would reject
on the kiosk is already rejected on ONNX Runtime in development.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Literal, Optional, Tuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError, EngineError
from ..tomlfile import read_toml, validation_error

MANIFEST_FILE = "manifest.toml"

DTYPES: Dict[str, type] = {
    "float32": np.float32,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}
"""Tensor element types a manifest may name, and their numpy types."""

DType = Literal["float32", "float16", "int64", "int32", "int8", "uint8", "bool"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class InputSpec(_Model):
    """One input tensor and its shape range (one TensorRT optimization profile)."""

    name: str = Field(min_length=1)
    """The tensor's name in the ONNX graph."""
    dtype: DType
    """Element type; feeds must have exactly this type."""
    min: Tuple[int, ...] = Field(min_length=1)
    """Smallest shape accepted, per dimension."""
    opt: Tuple[int, ...] = Field(min_length=1)
    """Shape TensorRT tunes its kernels for, and the shape ``warm_up`` runs."""
    max: Tuple[int, ...] = Field(min_length=1)
    """Largest shape accepted, per dimension."""

    @model_validator(mode="after")
    def _ordered(self) -> "InputSpec":
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ValueError(f"input {self.name}: min, opt and max must have the same number of dimensions")
        if any(d < 0 for d in self.min):
            raise ValueError(f"input {self.name}: dimensions must not be negative")
        for lo, mid, hi in zip(self.min, self.opt, self.max):
            if not lo <= mid <= hi:
                raise ValueError(f"input {self.name}: needs min <= opt <= max in every dimension, "
                                 f"got min {list(self.min)}, opt {list(self.opt)}, max {list(self.max)}")
        return self

    @property
    def fixed(self) -> bool:
        """True when the input has one shape only."""
        return self.min == self.max

    def accepts(self, shape: Tuple[int, ...]) -> bool:
        """Whether ``shape`` lies inside this input's profile."""
        return len(shape) == len(self.min) and all(lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max))


class OutputSpec(_Model):
    """One output tensor; its shape follows from the inputs (or, for some engines, from the data)."""

    name: str = Field(min_length=1)
    """The tensor's name in the ONNX graph."""
    dtype: DType
    """Element type of the output."""


class SourceSpec(_Model):
    """For an ONNX derived at setup from a provisioned model (tools/prepare_engines.py)."""

    export: str = Field(min_length=1)
    """Which export derives the ONNX from the source model."""
    file: str = Field(min_length=1)
    """The source model's file name under the models folder."""
    sha256: str
    """The source model's sha256 (lower-case hex)."""

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        return _check_sha(value)


def _check_sha(value: str) -> str:
    value = value.strip().lower()
    if not _SHA256.match(value):
        raise ValueError("must be 64 hexadecimal digits (a sha256)")
    return value


class EngineManifest(_Model):
    """What an engine folder promises; read from ``engines/<name>/manifest.toml``."""

    name: str
    """The engine's name; must equal its folder's name."""
    kind: Literal["tts", "face", "turn", "embedding"]
    """What the engine is for."""
    version: str = Field(min_length=1)
    """The engine definition's version (bump it when the ONNX changes)."""
    onnx: str
    """The ONNX file's name: in the engine folder (small, committed) or in ``engines.build_dir/<name>/``."""
    sha256: str
    """The ONNX file's sha256 (lower-case hex); a file that differs is refused."""
    precision: Literal["fp16", "fp32", "int8"] = "fp16"
    """TensorRT build precision; int8 needs ``calibration``."""
    calibration: Optional[str] = None
    """With precision int8: the calibration set (a folder name under the engine folder)."""
    sample_rate: Optional[int] = Field(default=None, gt=0)
    """Audio sample rate in Hz that the engine produces or consumes."""
    frame_rate: Optional[int] = Field(default=None, gt=0)
    """Output frames per second (face engines)."""
    memory_mb: int = Field(gt=0)
    """Estimated memory while loaded, in MiB (weights + activations), for the memory planner."""
    inputs: Tuple[InputSpec, ...] = Field(min_length=1)
    """Input tensors with their shape ranges."""
    outputs: Tuple[OutputSpec, ...] = Field(min_length=1)
    """Output tensors."""
    source: Optional[SourceSpec] = None
    """Where the ONNX is derived from, when it is exported at setup rather than committed."""
    metadata: Dict[str, str] = {}
    """Free key/value facts for the engine's user (window sizes, feature parameters)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (it is a folder name)")
        return value

    @field_validator("onnx")
    @classmethod
    def _onnx(cls, value: str) -> str:
        if not _NAME.match(value) or not value.endswith(".onnx"):
            raise ValueError("must be a plain file name ending in .onnx (no folders)")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        return _check_sha(value)

    @model_validator(mode="after")
    def _consistent(self) -> "EngineManifest":
        if self.precision == "int8" and not self.calibration:
            raise ValueError("precision int8 needs a calibration set (calibration = \"<folder>\")")
        if self.calibration and self.precision != "int8":
            raise ValueError(f"calibration is only used with precision int8, not {self.precision}")
        names = [spec.name for spec in self.inputs] + [spec.name for spec in self.outputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tensor names must be unique across inputs and outputs: {duplicates}")
        return self

    def input(self, name: str) -> InputSpec:
        """The input called ``name``; ``EngineError`` if there is none."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise EngineError(f"engine {self.name}: no input {name!r} (inputs: {[s.name for s in self.inputs]})")

    def zero_feeds(self, which: Literal["min", "opt", "max"] = "opt") -> Dict[str, np.ndarray]:
        """Zero tensors of every input at its min, opt or max shape (warm-up, benchmarks)."""
        return {spec.name: np.zeros(getattr(spec, which), dtype=DTYPES[spec.dtype]) for spec in self.inputs}

    def check_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        """Raise ``EngineError`` naming the first input that is missing, unknown, mistyped or out of profile."""
        expected = {spec.name for spec in self.inputs}
        missing = sorted(expected - feeds.keys())
        unknown = sorted(feeds.keys() - expected)
        if missing or unknown:
            raise EngineError(f"engine {self.name}: inputs do not match the manifest "
                              f"(missing {missing}, unknown {unknown})")
        for spec in self.inputs:
            array = feeds[spec.name]
            if not isinstance(array, np.ndarray) or array.dtype != DTYPES[spec.dtype]:
                got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                raise EngineError(f"engine {self.name}: input {spec.name} must be {spec.dtype}, got {got}")
            if not spec.accepts(tuple(array.shape)):
                raise EngineError(f"engine {self.name}: input {spec.name} has shape {list(array.shape)}, outside "
                                  f"the profile min {list(spec.min)} .. max {list(spec.max)}")


def parse_manifest(data: dict, *, source: str, folder_name: Optional[str] = None) -> EngineManifest:
    """Validate a parsed manifest; ``ConfigError`` lines name ``source`` and each bad field."""
    try:
        manifest = EngineManifest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    if folder_name is not None and manifest.name != folder_name:
        raise ConfigError(f"{source}: name: {manifest.name!r} must equal the engine's folder name {folder_name!r}")
    return manifest


def load_manifest(engine_dir: Path) -> EngineManifest:
    """Read ``engine_dir/manifest.toml``; ``ConfigError`` names the file and field on any problem."""
    engine_dir = Path(engine_dir)
    path = engine_dir / MANIFEST_FILE
    data = read_toml(path, "engine manifest")
    return parse_manifest(data, source=str(path), folder_name=engine_dir.name)
