"""ONNX Runtime on the CPU: the development and CI backend, and the kiosk's fallback.

The session runs sequentially with ``engines.cpu_threads`` intra-op threads that do not spin while
idle: the CPU is shared with llama.cpp, and spinning worker threads would steal its cores between
requests.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List

from ..errors import EngineError
from .base import Engine, Feeds
from .manifest import EngineManifest

log = logging.getLogger(__name__)


def _rss_bytes() -> int:
    """Resident set size of this process (Linux), 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class OnnxRuntimeEngine(Engine):
    """One ``onnxruntime.InferenceSession`` on the CPU execution provider."""

    backend = "onnxruntime"

    def __init__(self, manifest: EngineManifest, onnx_path: Path, threads: int = 2) -> None:
        super().__init__(manifest)
        self.onnx_path = Path(onnx_path)
        """The ONNX file (already checked against the manifest's sha256)."""
        self.threads = threads
        """Intra-op threads."""
        self._session = None
        self._outputs: List[str] = [spec.name for spec in manifest.outputs]
        self._loaded_bytes = 0

    def load(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3  # warnings about unused initializers are noise for users
        before = _rss_bytes()
        try:
            session = ort.InferenceSession(str(self.onnx_path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            raise EngineError(f"engine {self.name}: ONNX Runtime cannot load {self.onnx_path}: {exc}") from exc
        self._check_io(session)
        self._session = session
        self._loaded_bytes = max(_rss_bytes() - before, 0)
        log.info("engine %s: ONNX Runtime on %d CPU threads (%s)", self.name, self.threads, self.onnx_path.name)

    def _check_io(self, session) -> None:
        """The graph's tensors must be the manifest's, or every run would fail later with a worse message."""
        graph_inputs = {i.name for i in session.get_inputs()}
        graph_outputs = {o.name for o in session.get_outputs()}
        wanted_inputs = {spec.name for spec in self.manifest.inputs}
        problems = []
        if graph_inputs != wanted_inputs:
            problems.append(f"inputs {sorted(graph_inputs)} (manifest: {sorted(wanted_inputs)})")
        missing_outputs = sorted(set(self._outputs) - graph_outputs)
        if missing_outputs:
            problems.append(f"no outputs {missing_outputs} (it has {sorted(graph_outputs)})")
        if problems:
            raise EngineError(f"engine {self.name}: {self.onnx_path.name} does not match its manifest: "
                              + "; ".join(problems))

    def run(self, feeds: Feeds) -> Feeds:
        if self._session is None:
            raise EngineError(f"engine {self.name}: run() before load() or after close()")
        self.manifest.check_feeds(feeds)
        try:
            values = self._session.run(self._outputs, feeds)
        except Exception as exc:  # onnxruntime's runtime errors carry the failing node in the message
            raise EngineError(f"engine {self.name}: ONNX Runtime failed: {exc}") from exc
        return dict(zip(self._outputs, values))

    def memory_bytes(self) -> int:
        """Growth of the process's resident memory while the session was created (weights, arena)."""
        return self._loaded_bytes if self._session is not None else 0

    def close(self) -> None:
        self._session = None


def open_onnxruntime(manifest: EngineManifest, onnx_path: Path, threads: int,
                     *, load: bool = True) -> OnnxRuntimeEngine:
    """An ONNX Runtime engine, loaded unless ``load`` is false."""
    engine = OnnxRuntimeEngine(manifest, onnx_path, threads)
    if load:
        engine.load()
    return engine
