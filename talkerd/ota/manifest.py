"""What a bundle promises, as signed: its version, expiry, compatibility, and every file with its size
and sha256; for each engine a warm-up input with its expected output and tolerance.

Parsed only after the signature over its bytes has been checked (``bundle.read_header``).
"""
from __future__ import annotations

import datetime
import json
import re
from typing import Dict, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..engines.manifest import MANIFEST_FILE
from ..engines.manifest import parse_manifest as parse_engine_manifest
from ..errors import ConfigError
from ..tomlfile import TOMLDecodeError, tomllib
from .errors import BundleRejected
from .keys import TrustRoot

FORMAT = 1
ENGINES_DIR = "engines"
MODELS_DIR = "models"
WARMUP_FILE = "ota-warmup.npz"
"""In an engine's folder: arrays ``in.<input>`` (the warm-up feeds) and ``out.<output>`` (expected)."""
MAX_PATH = 400
_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^\d+(\.\d+)*$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def check_relative_path(path: str) -> str:
    """A plain relative path inside the release: no absolute path, no ``..``, no odd characters."""
    if len(path) > MAX_PATH or not path or path.startswith("/"):
        raise ValueError(f"{path!r} is not a relative path of at most {MAX_PATH} characters")
    parts = path.split("/")
    if any(not _COMPONENT.match(part) for part in parts):
        raise ValueError(f"{path!r}: every part must be letters, digits, '.', '_', '+' or '-' (no '..', no empty part)")
    if parts[0] not in (ENGINES_DIR, MODELS_DIR) or len(parts) < 2:
        raise ValueError(f"{path!r} must be under {ENGINES_DIR}/ or {MODELS_DIR}/")
    return path


class FileEntry(_Model):
    """One file of the release."""

    path: str
    """Relative path in the release, '/'-separated."""
    size: int = Field(ge=0)
    """Exact size in bytes."""
    sha256: str
    """Lower-case hex sha256 of the content."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_relative_path(value)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("must be 64 lower-case hexadecimal digits")
        return value


def version_tuple(text: str) -> Tuple[int, ...]:
    """"10.3.0.26" → (10, 3, 0, 26)."""
    return tuple(int(part) for part in text.split("."))


class Compatibility(_Model):
    """Where the release may run; an empty field means any."""

    tensorrt_min: Optional[str] = None
    """Lowest TensorRT version (inclusive), e.g. "10.3"."""
    tensorrt_below: Optional[str] = None
    """TensorRT version the release is not for any more (exclusive), e.g. "10.4"."""
    compute_capabilities: Tuple[str, ...] = ()
    """GPU compute capabilities ("8.7" is the Orin); empty for any."""
    jetpack: Tuple[str, ...] = ()
    """JetPack releases ("6.1", "6.2"); empty for any."""

    @field_validator("tensorrt_min", "tensorrt_below")
    @classmethod
    def _version(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _VERSION.match(value):
            raise ValueError(f"{value!r} is not a version like 10.3 or 10.3.0")
        return value

    def problems(self, tensorrt: Optional[str], capability: Optional[str], jetpack: Optional[str]) -> list:
        """Why this device does not fit, as phrases (empty when it fits)."""
        found = []
        if self.tensorrt_min or self.tensorrt_below:
            wanted = f"TensorRT >= {self.tensorrt_min or 'any'} and < {self.tensorrt_below or 'any'}"
            if tensorrt is None:
                found.append(f"needs {wanted}; this device has no TensorRT")
            elif (self.tensorrt_min and version_tuple(tensorrt) < version_tuple(self.tensorrt_min)) or (
                    self.tensorrt_below and version_tuple(tensorrt) >= version_tuple(self.tensorrt_below)):
                found.append(f"needs {wanted}; this device has TensorRT {tensorrt}")
        if self.compute_capabilities and capability not in self.compute_capabilities:
            found.append(f"needs compute capability {' or '.join(self.compute_capabilities)}; "
                         f"this device has {capability or 'no GPU'}")
        if self.jetpack and jetpack not in self.jetpack:
            found.append(f"needs JetPack {' or '.join(self.jetpack)}; this device has {jetpack or 'no JetPack'}")
        return found


class Warmup(_Model):
    """How a release's engine is checked in its trial."""

    rtol: float = Field(default=1e-3, ge=0)
    """Relative tolerance of each output against the expected one."""
    atol: float = Field(default=1e-4, ge=0)
    """Absolute tolerance of each output against the expected one."""


class EngineEntry(_Model):
    """An engine folder ``engines/<name>/`` of the release."""

    name: str = Field(pattern=_COMPONENT.pattern)
    """The engine's name (its folder and its manifest's name)."""
    warmup: Optional[Warmup] = None
    """The trial check: ``engines/<name>/ota-warmup.npz`` and its tolerance; None for no check."""


class BundleManifest(_Model):
    """The signed description of a bundle."""

    format: Literal[1] = FORMAT
    """Bundle format version."""
    version: int = Field(ge=1)
    """The bundle version: each new release has a higher one; the device refuses anything not newer."""
    created: datetime.datetime
    """When the bundle was made (UTC)."""
    expires: datetime.datetime
    """After this time the bundle is refused (a stale bundle cannot be replayed forever)."""
    downgrade_from: Optional[int] = Field(default=None, ge=1)
    """A signed downgrade: this bundle may replace installed versions up to this one."""
    compatibility: Compatibility = Compatibility()
    """Which TensorRT, GPU and JetPack the release is for."""
    engines: Tuple[EngineEntry, ...] = ()
    """The engine folders."""
    models: Dict[str, str] = {}
    """Role ("asr", "llm", "voice", …) → a file or folder of the release under models/."""
    files: Tuple[FileEntry, ...] = Field(min_length=1)
    """Every file of the release, in payload order."""
    trust: Optional[TrustRoot] = None
    """The next trust root (key rotation): adopted once this bundle installs."""
    notes: str = ""
    """Free text for people (what changed)."""

    @field_validator("created", "expires")
    @classmethod
    def _aware(cls, value: datetime.datetime) -> datetime.datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (UTC)")
        return value

    @field_validator("models")
    @classmethod
    def _model_paths(cls, value: Dict[str, str]) -> Dict[str, str]:
        for path in value.values():
            check_relative_path(path)
            if not path.startswith(MODELS_DIR + "/"):
                raise ValueError(f"{path!r} must be under {MODELS_DIR}/")
        return value

    @model_validator(mode="after")
    def _unique(self) -> "BundleManifest":
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("a file is listed twice")
        names = [e.name for e in self.engines]
        if len(set(names)) != len(names):
            raise ValueError("an engine is listed twice")
        return self

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> Optional[FileEntry]:
        return next((f for f in self.files if f.path == path), None)


def parse_manifest(data: bytes) -> BundleManifest:
    """The manifest (its signature already checked); ``BundleRejected`` naming the bad field."""
    try:
        return BundleManifest.model_validate(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleRejected(f"manifest is not JSON: {exc}", code="bad_manifest") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise BundleRejected(f"manifest: {where}: {error['msg']}", code="bad_manifest") from None


def manifest_bytes(manifest: BundleManifest) -> bytes:
    """The canonical bytes that are signed and shipped."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def check_contents(manifest: BundleManifest) -> None:
    """Every file belongs to a declared engine or model, and each engine has its manifest (and its
    warm-up file when it has a check): ``missing_file`` / ``extra_file`` otherwise."""
    paths = {f.path for f in manifest.files}
    owners = [f"{ENGINES_DIR}/{e.name}/" for e in manifest.engines]
    model_paths = set(manifest.models.values())
    for path in sorted(paths):
        if not (any(path.startswith(prefix) for prefix in owners) or path in model_paths
                or any(path.startswith(m + "/") for m in model_paths)):
            raise BundleRejected(f"file {path} belongs to no engine or model the manifest declares", code="extra_file")
    for engine in manifest.engines:
        needed = [f"{ENGINES_DIR}/{engine.name}/{MANIFEST_FILE}"]
        if engine.warmup is not None:
            needed.append(f"{ENGINES_DIR}/{engine.name}/{WARMUP_FILE}")
        for path in needed:
            if path not in paths:
                raise BundleRejected(f"engine {engine.name}: {path} is not in the bundle", code="missing_file")
    for role, path in manifest.models.items():
        if path not in paths and not any(p.startswith(path + "/") for p in paths):
            raise BundleRejected(f"model {role}: {path} is not in the bundle", code="missing_file")


def engine_manifest_path(name: str) -> str:
    return f"{ENGINES_DIR}/{name}/{MANIFEST_FILE}"


def check_engine_manifests(manifest: BundleManifest, contents: Dict[str, bytes]) -> None:
    """Each engine's manifest.toml (``contents``: path → bytes, already hash-checked) is valid and its
    ONNX is in the bundle with the sha256 it names: otherwise the engine would only fail at its trial."""
    for engine in manifest.engines:
        path = engine_manifest_path(engine.name)
        try:
            data = tomllib.loads(contents[path].decode("utf-8"))
            engine_manifest = parse_engine_manifest(data, source=path, folder_name=engine.name)
        except (UnicodeDecodeError, TOMLDecodeError) as exc:
            raise BundleRejected(f"{path}: not valid TOML: {exc}", code="bad_manifest") from None
        except ConfigError as exc:
            raise BundleRejected(exc.message, code="bad_manifest") from None
        onnx = manifest.file(f"{ENGINES_DIR}/{engine.name}/{engine_manifest.onnx}")
        if onnx is None:
            raise BundleRejected(f"engine {engine.name}: its ONNX {engine_manifest.onnx} is not in the bundle",
                                 code="missing_file")
        if onnx.sha256 != engine_manifest.sha256:
            raise BundleRejected(f"engine {engine.name}: {engine_manifest.onnx} has sha256 {onnx.sha256} in the bundle, "
                                 f"its manifest.toml names {engine_manifest.sha256}", code="hash_mismatch")
