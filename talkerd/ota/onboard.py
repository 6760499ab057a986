"""TensorRT engines built on the device, for a release whose bundle carries only ONNX (or engines built
for another TensorRT or GPU), through ``talkerd-build-engine``'s own builder, with its progress."""
from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import List

from ..engines import build
from ..engines.manifest import load_manifest
from ..engines.sidecar import ENGINE_SUFFIX, SIDECAR_SUFFIX, choose_engine, engine_files
from ..errors import EngineError
from .device import Platform
from .errors import BuildFailed
from .fileio import FileLayer
from .manifest import ENGINES_DIR, BundleManifest
from .trial import engines_config

BUILT_SUFFIXES = (ENGINE_SUFFIX, SIDECAR_SUFFIX, ".cache")
"""What the builder writes: engines, their sidecars, timing caches."""


def build_missing_engines(staging: Path, manifest: BundleManifest, platform: Platform, layer: FileLayer,
                          threads: int, progress: Callable[[str], None]) -> List[str]:
    """Build every engine of the staged release that has no engine for this TensorRT and GPU; the new
    files are fsynced (their folders are fsynced with the rest of the staging). Returns the builder's lines."""
    if platform.tensorrt is None or not manifest.engines:
        return []
    cfg = engines_config(staging, "auto", threads)
    try:
        tools = build._tensorrt()
    except EngineError as exc:
        raise BuildFailed(f"this device is set up for TensorRT {platform.tensorrt} but: {exc.message}") from None
    version, capability = tools[3], tools[4]
    lines = []
    for entry in manifest.engines:
        engine_manifest = load_manifest(cfg.dir / entry.name)
        found, _, _ = choose_engine(engine_manifest, engine_files(cfg.build_dir, entry.name), version, capability)
        if found is not None:
            continue
        progress(f"building the TensorRT engine {entry.name} for TensorRT {version}, sm{capability}")
        args = Namespace(force=False, timing_cache=None, workspace_mb=1024, quiet=False)
        try:
            lines.append(build.build_one(engine_manifest, cfg, tools, args))
        except (build.BuildFailed, EngineError) as exc:
            raise BuildFailed(f"engine {entry.name}: {exc.message}") from None
    for path in sorted(p for p in (staging / ENGINES_DIR).rglob("*") if p.is_file() and p.name.endswith(BUILT_SUFFIXES)):
        layer.fsync(path)
    return lines
