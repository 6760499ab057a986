"""Inference engines: manifests, the ONNX Runtime and TensorRT backends, and choosing between them.

``open_engine(engines_cfg, name)`` is the entry point. With ``backend = "auto"`` it opens the TensorRT
engine under ``engines.build_dir/<name>/`` whose sidecar matches the running TensorRT version, the
GPU's compute capability and the manifest's ONNX, wrapped so that a failure during a call reruns the
call on ONNX Runtime; when there is no such engine, TensorRT is missing or the engine does not load, it
logs one line saying why and opens ONNX Runtime. ``"tensorrt"`` and ``"onnxruntime"`` force a backend
(a forced TensorRT that cannot load is an ``EngineError``).
"""
from __future__ import annotations

import logging
from typing import Optional

from ..errors import EngineError
from .base import Engine, Feeds
from .fallback import FallbackEngine
from .files import locate_onnx, sha256_file
from .manifest import DTYPES, EngineManifest, InputSpec, OutputSpec, load_manifest
from .onnxruntime_backend import OnnxRuntimeEngine, open_onnxruntime
from .sidecar import Sidecar, choose_engine, engine_files

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime")

def backend_for(engines_cfg, name: str, backend: Optional[str] = None) -> str:
    """The backend asked for: the call's, else the engine's override in ``engines.backends``, else the default."""
    chosen = backend or dict(getattr(engines_cfg, "backends", {}) or {}).get(name) or engines_cfg.backend
    if chosen not in BACKENDS:
        raise EngineError(f"engine {name}: unknown backend {chosen!r} (choose one of {', '.join(BACKENDS)})")
    return chosen


def _open_tensorrt(manifest: EngineManifest, engines_cfg) -> Engine:
    """The matching TensorRT engine, loaded; ``EngineError`` saying why there is none."""
    from .tensorrt_backend import TensorRTEngine, runtime_info

    candidates = engine_files(engines_cfg.build_dir, manifest.name)
    if not candidates:
        raise EngineError(f"no TensorRT engine in {engines_cfg.build_dir / manifest.name} "
                          "(build one with talkerd-build-engine)")
    version, capability = runtime_info()
    path, sidecar, why = choose_engine(manifest, candidates, version, capability)
    if path is None:
        raise EngineError(why)
    engine = TensorRTEngine(manifest, path, sidecar)
    engine.load()
    return engine


def open_engine(engines_cfg, name: str, backend: Optional[str] = None) -> Engine:
    """Load the engine ``name`` (a folder under ``engines.dir``) on the configured or given backend.

    ``ConfigError`` for a bad manifest, ``EngineError`` when nothing can run it.
    """
    manifest = load_manifest(engines_cfg.dir / name)
    chosen = backend_for(engines_cfg, name, backend)
    threads = engines_cfg.cpu_threads

    if chosen == "onnxruntime":
        return open_onnxruntime(manifest, locate_onnx(manifest, engines_cfg), threads)
    if chosen == "tensorrt":
        try:
            return _open_tensorrt(manifest, engines_cfg)
        except EngineError as exc:
            raise EngineError(f"engine {name}: backend tensorrt: {exc.message}") from exc

    # auto: check the ONNX first, so a later fallback is known to be possible.
    onnx_path = locate_onnx(manifest, engines_cfg)
    if not engine_files(engines_cfg.build_dir, name):
        # The common case off the kiosk: no engine built, so TensorRT is not even imported.
        log.info("engine %s: no TensorRT engine built; using ONNX Runtime", name)
        return open_onnxruntime(manifest, onnx_path, threads)
    try:
        primary = _open_tensorrt(manifest, engines_cfg)
    except EngineError as exc:
        log.warning("engine %s: not using TensorRT: %s; using ONNX Runtime", name, exc.message)
        return open_onnxruntime(manifest, onnx_path, threads)
    return FallbackEngine(primary, lambda: open_onnxruntime(manifest, onnx_path, threads))


__all__ = [
    "BACKENDS", "DTYPES", "Engine", "EngineManifest", "FallbackEngine", "Feeds", "InputSpec", "OnnxRuntimeEngine",
    "OutputSpec", "Sidecar", "backend_for", "load_manifest", "locate_onnx", "open_engine", "sha256_file",
]
