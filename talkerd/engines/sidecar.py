"""The JSON sidecar written beside every built TensorRT engine, and finding the engine that fits.

A serialized TensorRT engine only runs on the TensorRT version and the GPU (compute capability) that
built it, and only means something for the ONNX it was built from. The sidecar records all three, so
the runtime can pick a matching engine, or say in one line why none matches, without trying to
deserialize a file that would fail (or worse, crash) inside TensorRT.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .manifest import EngineManifest

log = logging.getLogger(__name__)

ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".engine.json"


class Sidecar(BaseModel):
    """What a built engine was built with and for."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    engine: str = Field(min_length=1)
    """The engine's name (manifest name)."""
    manifest_version: str
    """The manifest's version at build time."""
    onnx_sha256: str
    """sha256 of the ONNX the engine was built from."""
    tensorrt_version: str
    """``tensorrt.__version__`` of the builder; the runtime must be the same."""
    compute_capability: str
    """The GPU's compute capability, "major.minor" (8.7 on Jetson AGX Orin)."""
    device_name: str = ""
    """The GPU's name, for people."""
    device_memory_bytes: int = Field(default=0, ge=0)
    """Device memory an execution context needs (activations), as TensorRT reports it."""
    engine_bytes: int = Field(default=0, ge=0)
    """Size of the serialized engine (about its weights)."""
    precision: str
    """The manifest's precision the engine was built with."""
    flags: List[str] = []
    """Builder flags set (FP16, INT8, ...)."""
    profile: Dict[str, List[List[int]]] = {}
    """Input name → [min, opt, max] shapes of the optimization profile the engine was built with."""
    built_at: str = ""
    """UTC time of the build, ISO 8601."""
    build_seconds: float = 0.0
    """How long the build took."""


def manifest_profile(manifest: EngineManifest) -> Dict[str, List[List[int]]]:
    """The manifest's optimization profile in the sidecar's form."""
    return {spec.name: [list(spec.min), list(spec.opt), list(spec.max)] for spec in manifest.inputs}


def sidecar_path(engine_path: Path) -> Path:
    """``x.engine`` → ``x.engine.json``."""
    return Path(str(engine_path) + ".json")


def engine_file_name(name: str, tensorrt_version: str, compute_capability: str, precision: str) -> str:
    """The builder's file name: one engine per TensorRT version, GPU and precision can live side by side."""
    return f"{name}-trt{tensorrt_version}-sm{compute_capability.replace('.', '')}-{precision}{ENGINE_SUFFIX}"


def read_sidecar(engine_path: Path) -> Optional[Sidecar]:
    """The engine's sidecar, or None (logged) when it is missing or unreadable."""
    path = sidecar_path(engine_path)
    try:
        return Sidecar.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        log.warning("TensorRT engine %s has no sidecar %s; it is not used", engine_path, path.name)
    except (OSError, ValueError, ValidationError) as exc:
        log.warning("TensorRT engine %s: unreadable sidecar %s (%s); it is not used", engine_path, path.name,
                    str(exc).splitlines()[0])
    return None


def write_sidecar(engine_path: Path, sidecar: Sidecar) -> Path:
    path = sidecar_path(engine_path)
    path.write_text(json.dumps(sidecar.model_dump(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def engine_files(build_dir: Path, name: str) -> List[Path]:
    """The built engine files for ``name`` (any version), newest name last."""
    folder = Path(build_dir) / name
    return sorted(folder.glob("*" + ENGINE_SUFFIX)) if folder.is_dir() else []


def choose_engine(manifest: EngineManifest, candidates: List[Path], tensorrt_version: str,
                  compute_capability: str) -> Tuple[Optional[Path], Optional[Sidecar], str]:
    """The engine file built for this TensorRT, GPU and ONNX, with its sidecar; else ``None`` and why."""
    seen = []
    for path in candidates:
        sidecar = read_sidecar(path)
        if sidecar is None:
            seen.append(f"{path.name} (no readable sidecar)")
            continue
        mismatches = []
        if sidecar.tensorrt_version != tensorrt_version:
            mismatches.append(f"TensorRT {sidecar.tensorrt_version}")
        if sidecar.compute_capability != compute_capability:
            mismatches.append(f"compute capability {sidecar.compute_capability}")
        if sidecar.onnx_sha256 != manifest.sha256:
            mismatches.append("another ONNX (sha256 differs)")
        if sidecar.precision != manifest.precision:
            mismatches.append(f"precision {sidecar.precision}")
        if sidecar.profile and sidecar.profile != manifest_profile(manifest):
            mismatches.append("another optimization profile")
        if not mismatches:
            return path, sidecar, ""
        seen.append(f"{path.name} built for {', '.join(mismatches)}")
    reason = (f"no engine built for TensorRT {tensorrt_version} and compute capability {compute_capability}"
              f" ({'; '.join(seen) if seen else 'none built'})")
    return None, None, reason
