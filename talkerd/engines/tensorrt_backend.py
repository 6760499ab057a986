"""TensorRT 10 on the GPU through pycuda: the kiosk's backend.

``tensorrt`` and ``pycuda`` are imported only when a TensorRT engine is opened, so the rest of the
daemon runs where they do not exist. Each engine owns one execution context and one CUDA stream.
Host buffers are page-locked (pinned) so copies are truly asynchronous; host and device buffers grow
only when a larger shape arrives. A call sets every input's shape (inside the optimization profile),
copies the inputs in, enqueues the engine and copies the outputs back, all on the engine's stream,
with a single ``stream.synchronize()`` at the end. Outputs whose size depends on the data (their shape
still has -1 after the inputs are set) get an ``IOutputAllocator``: TensorRT asks it for memory and
tells it the final shape before ``execute_async_v3`` returns, so their copy-back is enqueued like the
others.

CUDA contexts belong to threads in pycuda; the engine uses the device's primary context and pushes it
around every call, so any pipeline worker thread may call ``run``.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

import numpy as np

from ..errors import EngineError
from .base import Engine, Feeds
from .manifest import EngineManifest
from .sidecar import Sidecar

log = logging.getLogger(__name__)

_context_lock = threading.Lock()
_primary_context = None


def import_tensorrt():
    """``(tensorrt, pycuda.driver)``; ``EngineError`` saying which is missing."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineError(f"TensorRT is not available ({exc}); on JetPack install python3-libnvinfer") from None
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise EngineError(f"pycuda is not available ({exc}); on JetPack: pip install pycuda "
                          "(it builds against JetPack's CUDA toolkit)") from None
    return trt, cuda


def cuda_context(cuda):
    """The GPU's primary CUDA context (shared with every other user of the device in this process)."""
    global _primary_context
    with _context_lock:
        if _primary_context is None:
            try:
                cuda.init()
                _primary_context = cuda.Device(0).retain_primary_context()
            except Exception as exc:  # pycuda raises cuda.Error subclasses and RuntimeError
                raise EngineError(f"no usable CUDA device: {exc}") from None
        return _primary_context


def cuda_mem_info() -> Optional[Tuple[int, int]]:
    """(free, total) device memory in bytes, measured in the engines' CUDA context; None while no
    TensorRT engine has been opened (this never initialises CUDA itself)."""
    with _context_lock:
        context = _primary_context
    if context is None:
        return None
    import pycuda.driver as cuda

    context.push()
    try:
        free, total = cuda.mem_get_info()
    finally:
        context.pop()
    return int(free), int(total)


def runtime_info() -> Tuple[str, str]:
    """The running TensorRT version and the GPU's compute capability ("8.7"); ``EngineError`` if absent."""
    trt, cuda = import_tensorrt()
    cuda_context(cuda)
    try:
        major, minor = cuda.Device(0).compute_capability()
    except Exception as exc:  # pycuda's error types
        raise EngineError(f"cannot read the GPU's compute capability: {exc}") from None
    return str(trt.__version__), f"{major}.{minor}"


def _trt_logger(trt):
    """A TensorRT logger that writes to this module's logger instead of stdout."""
    levels = {
        trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
        trt.ILogger.Severity.ERROR: logging.ERROR,
        trt.ILogger.Severity.WARNING: logging.WARNING,
        trt.ILogger.Severity.INFO: logging.DEBUG,
        trt.ILogger.Severity.VERBOSE: logging.DEBUG,
    }

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg) -> None:
            log.log(levels.get(severity, logging.INFO), "TensorRT: %s", msg)

    return _Logger()


class _Buffer:
    """A pinned host array and a device allocation of the same capacity, grown on demand."""

    def __init__(self, cuda, dtype: np.dtype) -> None:
        self._cuda = cuda
        self.dtype = np.dtype(dtype)
        self.capacity = 0
        self.host: Optional[np.ndarray] = None
        self.device = None
        self.allocations = 0
        """How many times the buffers were (re)allocated (for tests and diagnostics)."""

    def ensure(self, count: int) -> None:
        count = max(int(count), 1)
        if count <= self.capacity:
            return
        self.free()
        self.host = self._cuda.pagelocked_empty(count, self.dtype)
        self.device = self._cuda.mem_alloc(count * self.dtype.itemsize)
        self.capacity = count
        self.allocations += 1

    def ensure_bytes(self, size: int) -> None:
        self.ensure(-(-int(size) // self.dtype.itemsize))

    @property
    def nbytes(self) -> int:
        return self.capacity * self.dtype.itemsize * 2  # host + device

    def free(self) -> None:
        if self.device is not None:
            self.device.free()
        self.device = None
        self.host = None
        self.capacity = 0


def _output_allocator(trt, buffers: Dict[str, _Buffer]):
    """An ``IOutputAllocator`` that serves data-dependent outputs from this engine's buffers."""

    class _Allocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.shapes: Dict[str, Tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name, memory, size, alignment):
            buffer = buffers[tensor_name]
            buffer.ensure_bytes(size)  # cudaMalloc alignment (256 B) satisfies any TensorRT request
            return int(buffer.device)

        def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name, shape):
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

    return _Allocator()


class TensorRTEngine(Engine):
    """A deserialized TensorRT engine with one execution context and one CUDA stream."""

    backend = "tensorrt"

    def __init__(self, manifest: EngineManifest, engine_path: Path, sidecar: Optional[Sidecar] = None) -> None:
        super().__init__(manifest)
        self.engine_path = Path(engine_path)
        """The serialized engine file."""
        self.sidecar = sidecar
        """What the engine was built with (None when opened without one)."""
        self._trt = self._cuda = self._ctx = None
        self._engine = self._context = self._stream = self._allocator = None
        self._buffers: Dict[str, _Buffer] = {}
        self._dtypes: Dict[str, np.dtype] = {}
        self._data_dependent: Set[str] = set()
        self._engine_bytes = 0
        self._activation_bytes = 0
        self._lock = threading.Lock()

    # --- loading -----------------------------------------------------------------------------------

    def load(self) -> None:
        self._trt, self._cuda = import_tensorrt()
        self._ctx = cuda_context(self._cuda)
        try:
            data = self.engine_path.read_bytes()
        except OSError as exc:
            raise EngineError(f"engine {self.name}: cannot read {self.engine_path}: {exc.strerror}") from None
        self._ctx.push()
        try:
            self._deserialize(data)
        except EngineError:
            raise
        except Exception as exc:  # TensorRT and pycuda raise their own types; the caller may fall back
            raise EngineError(f"engine {self.name}: TensorRT failed to load {self.engine_path}: {exc}") from exc
        finally:
            self._ctx.pop()
        log.info("engine %s: TensorRT %s (%s, %.1f MiB + %.1f MiB activations)", self.name,
                 self._trt.__version__, self.engine_path.name, self._engine_bytes / 2**20, self._activation_bytes / 2**20)

    def _deserialize(self, data: bytes) -> None:
        trt = self._trt
        runtime = trt.Runtime(_trt_logger(trt))
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise EngineError(f"engine {self.name}: TensorRT {trt.__version__} cannot deserialize {self.engine_path} "
                              "(built by another TensorRT version or for another GPU?)")
        context = engine.create_execution_context()
        if context is None:
            raise EngineError(f"engine {self.name}: TensorRT could not create an execution context (out of memory?)")
        self._check_io(engine)
        self._engine, self._context = engine, context
        self._runtime = runtime  # keep the runtime alive as long as its engine
        self._stream = self._cuda.Stream()
        self._buffers = {name: _Buffer(self._cuda, dtype) for name, dtype in self._dtypes.items()}
        self._allocator = _output_allocator(trt, self._buffers)
        self._engine_bytes = len(data)
        size = getattr(engine, "device_memory_size_v2", None)
        self._activation_bytes = int(size if size is not None else engine.device_memory_size)

    def _check_io(self, engine) -> None:
        """The engine's tensors and profile must be the manifest's; a stale engine is refused, not guessed at."""
        trt = self._trt
        inputs, outputs = set(), set()
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            self._dtypes[name] = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).add(name)
        wanted_in = {spec.name for spec in self.manifest.inputs}
        wanted_out = {spec.name for spec in self.manifest.outputs}
        if inputs != wanted_in or not wanted_out <= outputs:
            raise EngineError(f"engine {self.name}: {self.engine_path.name} has inputs {sorted(inputs)} and outputs "
                              f"{sorted(outputs)}, the manifest wants {sorted(wanted_in)} and {sorted(wanted_out)}")
        for spec in self.manifest.inputs:
            if self._dtypes[spec.name] != np.dtype(spec.dtype):
                raise EngineError(f"engine {self.name}: input {spec.name} is {self._dtypes[spec.name]} in the engine, "
                                  f"{spec.dtype} in the manifest")
            profile = tuple(tuple(int(d) for d in shape) for shape in engine.get_tensor_profile_shape(spec.name, 0))
            if profile != (spec.min, spec.opt, spec.max):
                raise EngineError(f"engine {self.name}: input {spec.name} has profile min/opt/max {list(profile)} in "
                                  f"the engine, {[spec.min, spec.opt, spec.max]} in the manifest: rebuild it")

    # --- running -----------------------------------------------------------------------------------

    def run(self, feeds: Feeds) -> Feeds:
        if self._context is None:
            raise EngineError(f"engine {self.name}: run() before load() or after close()")
        self.manifest.check_feeds(feeds)
        with self._lock:
            self._ctx.push()
            try:
                return self._run(feeds)
            except EngineError:
                raise
            except Exception as exc:  # a CUDA fault surfaces as pycuda's or TensorRT's own exception type
                raise EngineError(f"engine {self.name}: TensorRT run failed: {exc}") from exc
            finally:
                self._ctx.pop()

    def _run(self, feeds: Feeds) -> Feeds:
        cuda, context, stream = self._cuda, self._context, self._stream
        for spec in self.manifest.inputs:
            array = np.ascontiguousarray(feeds[spec.name])
            if not context.set_input_shape(spec.name, array.shape):
                raise EngineError(f"engine {self.name}: TensorRT rejected shape {list(array.shape)} for input {spec.name}")
            buffer = self._buffers[spec.name]
            buffer.ensure(array.size)
            host = buffer.host[:array.size]
            np.copyto(host, array.reshape(-1))
            cuda.memcpy_htod_async(buffer.device, host, stream)
            context.set_tensor_address(spec.name, int(buffer.device))
        shapes: Dict[str, Tuple[int, ...]] = {}
        for spec in self.manifest.outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(spec.name))
            if spec.name in self._data_dependent or any(d < 0 for d in shape):
                self._use_allocator(spec.name)
                continue
            buffer = self._buffers[spec.name]
            buffer.ensure(int(np.prod(shape)))
            context.set_tensor_address(spec.name, int(buffer.device))
            shapes[spec.name] = shape
        if not context.execute_async_v3(stream.handle):
            raise EngineError(f"engine {self.name}: TensorRT execute_async_v3 failed")
        for name in self._data_dependent:
            if name not in self._allocator.shapes:
                raise EngineError(f"engine {self.name}: TensorRT gave no shape for data-dependent output {name}")
            shapes[name] = self._allocator.shapes.pop(name)
        views = {}
        for spec in self.manifest.outputs:
            count = int(np.prod(shapes[spec.name]))
            buffer = self._buffers[spec.name]
            buffer.ensure(count)  # only grows for an allocator output whose size came back as 0
            views[spec.name] = buffer.host[:count]
            cuda.memcpy_dtoh_async(views[spec.name], buffer.device, stream)
        stream.synchronize()
        # Copies: the pinned buffers are reused by the next call.
        return {name: view.reshape(shapes[name]).copy() for name, view in views.items()}

    def _use_allocator(self, name: str) -> None:
        if name not in self._data_dependent:
            if not self._context.set_output_allocator(name, self._allocator):
                raise EngineError(f"engine {self.name}: TensorRT refused an output allocator for {name}")
            self._data_dependent.add(name)
            log.debug("engine %s: output %s has a data-dependent shape", self.name, name)

    # --- bookkeeping -------------------------------------------------------------------------------

    def buffer_allocations(self) -> Dict[str, int]:
        """How often each tensor's buffers were allocated."""
        return {name: buffer.allocations for name, buffer in self._buffers.items()}

    def memory_bytes(self) -> int:
        if self._engine is None:
            return 0
        return self._engine_bytes + self._activation_bytes + sum(b.nbytes for b in self._buffers.values())

    def close(self) -> None:
        if self._ctx is None or self._engine is None:
            return
        self._ctx.push()
        try:
            for buffer in self._buffers.values():
                buffer.free()
            self._context = self._engine = self._stream = self._allocator = None
            self._runtime = None
        finally:
            self._ctx.pop()
        self._buffers = {}
