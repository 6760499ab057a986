"""Building one TensorRT engine from an ONNX file and its manifest (TensorRT 10 builder API).

Used by ``talkerd-build-engine`` (build.py); ``tensorrt`` and ``pycuda`` are imported by the caller
and passed in, so this module imports nothing that is missing off the kiosk.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, TextIO

import numpy as np

from ..errors import EngineError
from .manifest import DTYPES, EngineManifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """A serialized engine and what the sidecar records about it."""

    data: bytes
    """The serialized engine."""
    flags: List[str]
    """Builder flags that were set."""
    device_memory_bytes: int
    """Activation memory an execution context needs."""
    seconds: float
    """Wall time of the build."""


def progress_monitor(trt, stream: Optional[TextIO] = None):
    """An ``IProgressMonitor`` printing each builder phase with its steps (default: to stderr); None
    before TensorRT 10."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    stream = stream if stream is not None else sys.stderr

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()  # TensorRT may report from several threads
            self._depth = {}
            self._steps = {}
            self._started = {}
            self._last_print = 0.0

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
                self._depth[phase_name] = depth
                self._steps[phase_name] = num_steps
                self._started[phase_name] = time.monotonic()
                stream.write(f"{'  ' * depth}{phase_name} ({num_steps} steps)\n")
                stream.flush()

        def step_complete(self, phase_name, step):
            with self._lock:
                now = time.monotonic()
                if now - self._last_print >= 2.0:  # a line every two seconds at most
                    self._last_print = now
                    depth = self._depth.get(phase_name, 0)
                    stream.write(f"{'  ' * depth}  {phase_name}: step {step + 1}/{self._steps.get(phase_name, '?')}\n")
                    stream.flush()
            return True  # never cancel

        def phase_finish(self, phase_name):
            with self._lock:
                elapsed = time.monotonic() - self._started.pop(phase_name, time.monotonic())
                stream.write(f"{'  ' * self._depth.pop(phase_name, 0)}{phase_name} done in {elapsed:.1f} s\n")
                stream.flush()

    return _Monitor()


def calibrator(trt, cuda, manifest: EngineManifest, folder: Path):
    """An INT8 entropy calibrator over ``folder/*.npz`` (one file per batch, one array per input name)."""
    batches = sorted(Path(folder).glob("*.npz"))
    if not batches:
        raise EngineError(f"engine {manifest.name}: calibration set {folder} has no .npz files")
    cache_path = Path(folder) / "calibration.cache"

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._next = 0
            self._device = {}

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self._next >= len(batches):
                return None
            with np.load(batches[self._next]) as data:
                pointers = []
                for name in names:
                    spec = manifest.input(name)
                    if name not in data:
                        raise EngineError(f"{batches[self._next]}: no array {name!r}")
                    array = np.ascontiguousarray(data[name], dtype=DTYPES[spec.dtype])
                    if not spec.accepts(tuple(array.shape)):
                        raise EngineError(f"{batches[self._next]}: {name} has shape {list(array.shape)}, "
                                          f"outside the profile")
                    if name in self._device:
                        self._device[name].free()
                    self._device[name] = cuda.mem_alloc(max(array.nbytes, 1))
                    cuda.memcpy_htod(self._device[name], array)
                    pointers.append(int(self._device[name]))
            self._next += 1
            return pointers

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            cache_path.write_bytes(bytes(cache))

    return _Calibrator()


def _parse(trt, network, logger, onnx_path: Path, manifest: EngineManifest):
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"engine {manifest.name}: TensorRT cannot parse {onnx_path.name}: {errors}")
    return parser


def build_engine(trt, cuda, logger, manifest: EngineManifest, onnx_path: Path, *, timing_cache: Optional[Path],
                 workspace_mb: int, calibration_dir: Optional[Path], monitor=None) -> BuildResult:
    """ONNX + manifest → serialized engine with the manifest's profile and precision."""
    started = time.monotonic()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = _parse(trt, network, logger, onnx_path, manifest)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if monitor is not None:
        config.progress_monitor = monitor

    profile = builder.create_optimization_profile()
    for spec in manifest.inputs:
        profile.set_shape(spec.name, spec.min, spec.opt, spec.max)
    config.add_optimization_profile(profile)

    flags = []
    if manifest.precision in ("fp16", "int8"):
        if not builder.platform_has_fast_fp16:
            log.warning("engine %s: this GPU has no fast FP16; building anyway", manifest.name)
        config.set_flag(trt.BuilderFlag.FP16)
        flags.append("FP16")
    if manifest.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator(trt, cuda, manifest, calibration_dir)
        config.set_calibration_profile(profile)
        flags.append("INT8")

    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b"")
    config.set_timing_cache(cache, False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"engine {manifest.name}: TensorRT could not build an engine (see the log above)")
    data = bytes(serialized)
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))

    engine = trt.Runtime(logger).deserialize_cuda_engine(data)
    if engine is None:
        raise EngineError(f"engine {manifest.name}: the engine just built does not deserialize")
    device_memory = getattr(engine, "device_memory_size_v2", None)
    device_memory = int(device_memory if device_memory is not None else engine.device_memory_size)
    del parser  # the parser must outlive the build: it owns the network's weights
    return BuildResult(data=data, flags=flags, device_memory_bytes=device_memory,
                       seconds=time.monotonic() - started)
