"""A small stand-in for the ``tensorrt`` and ``pycuda.driver`` Python APIs.

TensorRT and CUDA cannot be installed on the development machine (no NVIDIA GPU; the PyPI TensorRT
packages only download from NVIDIA's servers), so the TensorRT backend's own logic — buffer handling,
input shapes and profile checks, data-dependent outputs, the order of asynchronous copies and the one
synchronisation per call — is tested against this module instead. It imitates only the calls the
backend and the builder use, with the semantics the TensorRT 10 and pycuda documentation give them:

- the GPU is numpy byte arrays behind integer addresses; freed memory cannot be used again;
- copies and kernels on a stream are queued and happen only at ``Stream.synchronize()`` (as on a real
  GPU, reading a host buffer before synchronising gives stale data), and copies from or to host memory
  that is not page-locked are refused;
- ``set_input_shape`` refuses shapes outside the optimization profile, ``get_tensor_shape`` gives -1
  for a data-dependent output, whose memory comes from the ``IOutputAllocator`` during
  ``execute_async_v3`` (TensorRT synchronises internally for those, as here);
- an "engine file" is JSON naming one of the numeric models below and its tensors and profile; the
  builder part reads the real ONNX's inputs and outputs and records the optimization profile it is
  given, so an engine "built" here runs here only if the builder passed the manifest's profile on.
"""
from __future__ import annotations

import enum
import itertools
import json
import sys
import types
from dataclasses import dataclass, field

import numpy as np


def affine_model(feeds):
    """y = 2x + 1, and the positions of the positive elements of x (ONNX NonZero of x > 0)."""
    x = feeds["x"]
    return {"y": (x * 2 + 1).astype(np.float32), "pos": np.array(np.nonzero(x > 0), dtype=np.int64)}


def affine_shapes(x_shape):
    """Output shapes once x's shape is set: pos is [rank, number of positives], known only from the data."""
    return {"y": tuple(x_shape), "pos": (len(x_shape), -1)}


MODELS = {"affine": (affine_model, affine_shapes)}


@dataclass
class Gpu:
    """What happened on the pretend GPU; tests read it."""

    memory: dict = field(default_factory=dict)
    synchronizations: int = 0
    htod: int = 0
    dtoh: int = 0
    executions: int = 0
    fail_on_execution: int = 0
    """Make the n-th ``execute_async_v3`` (1-based) raise, as a lost GPU or a driver fault would."""
    pushes: int = 0
    pops: int = 0
    pinned: set = field(default_factory=set)
    _addresses: itertools.count = field(default_factory=lambda: itertools.count(0x1000, 0x1000))


GPU = Gpu()


# --- pycuda.driver -------------------------------------------------------------------------------------

class CudaError(Exception):
    pass


class DeviceAllocation:
    def __init__(self, nbytes: int) -> None:
        self.address = next(GPU._addresses)
        GPU.memory[self.address] = np.zeros(nbytes, np.uint8)

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        GPU.memory.pop(self.address, None)


def _device_bytes(address: int) -> np.ndarray:
    if address not in GPU.memory:
        raise CudaError(f"invalid device address {address:#x} (freed or never allocated)")
    return GPU.memory[address]


def _check_pinned(array: np.ndarray) -> None:
    base = array
    while base is not None and id(base) not in GPU.pinned:
        base = base.base
    if base is None:
        raise CudaError("asynchronous copy with host memory that is not page-locked")


class Stream:
    _streams: dict = {}

    def __init__(self) -> None:
        self.handle = next(GPU._addresses)
        self.queue = []
        Stream._streams[self.handle] = self

    def synchronize(self) -> None:
        GPU.synchronizations += 1
        self.flush()

    def flush(self) -> None:
        while self.queue:
            self.queue.pop(0)()


def pagelocked_empty(shape, dtype):
    array = np.empty(shape, dtype)
    GPU.pinned.add(id(array))
    return array


def mem_alloc(nbytes: int) -> DeviceAllocation:
    return DeviceAllocation(int(nbytes))


def memcpy_htod_async(dest, src: np.ndarray, stream: Stream) -> None:
    _check_pinned(src)
    GPU.htod += 1

    def copy():
        data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        _device_bytes(int(dest))[:data.size] = data
    stream.queue.append(copy)


def memcpy_dtoh_async(dest: np.ndarray, src, stream: Stream) -> None:
    _check_pinned(dest)
    GPU.dtoh += 1

    def copy():
        flat = dest.view(np.uint8).reshape(-1)
        flat[:] = _device_bytes(int(src))[:flat.size]
    stream.queue.append(copy)


class _Context:
    def push(self) -> None:
        GPU.pushes += 1

    def pop(self) -> None:
        GPU.pops += 1


class Device:
    capability = (8, 7)

    def __init__(self, index: int) -> None:
        self.index = index

    def compute_capability(self):
        return Device.capability

    def name(self) -> str:
        return "Orin (stand-in)"

    def total_memory(self) -> int:
        return 32 << 30

    def retain_primary_context(self) -> _Context:
        return _Context()


def init() -> None:
    pass


def mem_get_info():
    """(free, total) device memory in bytes."""
    total = Device(0).total_memory()
    return total - sum(block.size for block in GPU.memory.values()), total


# --- tensorrt ------------------------------------------------------------------------------------------

class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = np.float32
    HALF = np.float16
    INT64 = np.int64
    INT32 = np.int32
    BOOL = np.bool_


def nptype(dtype: DataType):
    return dtype.value


class ILogger:
    class Severity(enum.Enum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self) -> None:
        pass


class IOutputAllocator:
    def __init__(self) -> None:
        pass


class Runtime:
    def __init__(self, logger: ILogger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes):
        try:
            spec = json.loads(bytes(data).decode())
        except ValueError:
            self.logger.log(ILogger.Severity.ERROR, "invalid engine data")
            return None
        return CudaEngine(spec)


class CudaEngine:
    """Spec: {"model": name, "tensors": [{"name", "mode", "dtype", "profile": [min, opt, max]}, ...]}."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.tensors = {t["name"]: t for t in spec["tensors"]}
        self.num_io_tensors = len(spec["tensors"])
        self.device_memory_size_v2 = 1 << 20

    def get_tensor_name(self, index: int) -> str:
        return self.spec["tensors"][index]["name"]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode[self.tensors[name]["mode"]]

    def get_tensor_dtype(self, name: str) -> DataType:
        return {np.dtype(d.value).name: d for d in DataType}[self.tensors[name]["dtype"]]

    def get_tensor_profile_shape(self, name: str, profile: int):
        return [tuple(s) for s in self.tensors[name]["profile"]]

    def create_execution_context(self):
        return ExecutionContext(self)


class ExecutionContext:
    def __init__(self, engine: CudaEngine) -> None:
        self.engine = engine
        self.shapes = {}
        self.addresses = {}
        self.allocators = {}

    def set_input_shape(self, name: str, shape) -> bool:
        low, _, high = self.engine.tensors[name]["profile"]
        if len(shape) != len(low) or any(not lo <= d <= hi for lo, d, hi in zip(low, shape, high)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def _inputs(self):
        return [n for n, t in self.engine.tensors.items() if t["mode"] == "INPUT"]

    def get_tensor_shape(self, name: str):
        if name in self.shapes:
            return self.shapes[name]
        x = self.shapes.get(self._inputs()[0])
        if x is None:
            return (-1,) * 2
        return MODELS[self.engine.spec["model"]][1](x)[name]

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = int(address)
        return True

    def set_output_allocator(self, name: str, allocator: IOutputAllocator) -> bool:
        self.allocators[name] = allocator
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        GPU.executions += 1
        if GPU.fail_on_execution and GPU.executions >= GPU.fail_on_execution:
            raise RuntimeError("CUDA error 719: unspecified launch failure (stand-in)")
        stream = Stream._streams[stream_handle]
        outputs = [n for n, t in self.engine.tensors.items() if t["mode"] == "OUTPUT"]
        dynamic = [n for n in outputs if -1 in tuple(self.get_tensor_shape(n))]
        missing = [n for n in dynamic if n not in self.allocators] + \
                  [n for n in outputs if n not in dynamic and n not in self.addresses]
        if missing:
            raise CudaError(f"no memory for outputs {missing}")

        def kernel():
            feeds = {}
            for name in self._inputs():
                dtype = np.dtype(self.engine.tensors[name]["dtype"])
                count = int(np.prod(self.shapes[name]))
                raw = _device_bytes(self.addresses[name])[:count * dtype.itemsize]
                feeds[name] = raw.view(dtype).reshape(self.shapes[name]).copy()
            results = MODELS[self.engine.spec["model"]][0](feeds)
            for name in outputs:
                data = np.ascontiguousarray(results[name])
                if name in dynamic:
                    allocator = self.allocators[name]
                    address = allocator.reallocate_output_async(name, 0, data.nbytes, 256, stream_handle)
                    allocator.notify_shape(name, data.shape)
                else:
                    address = self.addresses[name]
                _device_bytes(address)[:data.nbytes] = data.view(np.uint8).reshape(-1)

        if dynamic:  # TensorRT has to wait for the data to know the size: an internal synchronisation
            stream.flush()
            kernel()
        else:
            stream.queue.append(kernel)
        return True


# --- the builder (tensorrt.Builder, OnnxParser, IBuilderConfig) --------------------------------------

class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


class BuilderFlag(enum.Enum):
    FP16 = 0
    INT8 = 1


class IProgressMonitor:
    def __init__(self) -> None:
        pass


class _Network:
    def __init__(self) -> None:
        self.tensors = []
        self.name = ""


class OnnxParser:
    """Reads the real ONNX with the onnx package; the "engine" records its graph's tensors."""

    def __init__(self, network: _Network, logger) -> None:
        self.network, self.errors = network, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]

    def parse_from_file(self, path: str) -> bool:
        import onnx

        try:
            graph = onnx.load(path).graph
        except Exception as exc:  # the real parser reports any unreadable model as a parse error
            self.errors.append(f"cannot read {path}: {exc}")
            return False
        dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}
        self.network.name = graph.name
        for mode, values in (("INPUT", graph.input), ("OUTPUT", graph.output)):
            for value in values:
                self.network.tensors.append({"name": value.name, "mode": mode,
                                             "dtype": dtype[value.type.tensor_type.elem_type]})
        return True


class _Profile:
    def __init__(self) -> None:
        self.shapes = {}

    def set_shape(self, name, low, opt, high) -> None:
        self.shapes[name] = [list(low), list(opt), list(high)]


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def serialize(self) -> bytes:
        return self.data + b"+timing"


class _BuilderConfig:
    def __init__(self) -> None:
        self.flags, self.profiles, self.pools = set(), [], {}
        self.progress_monitor = None
        self.timing_cache = None

    def set_memory_pool_limit(self, pool, size) -> None:
        self.pools[pool] = size

    def set_flag(self, flag) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data) -> _TimingCache:
        return _TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> _TimingCache:
        return self.timing_cache


class Builder:
    platform_has_fast_fp16 = True
    last_config = None

    def __init__(self, logger) -> None:
        self.logger = logger

    def create_network(self, flags: int) -> _Network:
        return _Network()

    def create_builder_config(self) -> _BuilderConfig:
        Builder.last_config = _BuilderConfig()
        return Builder.last_config

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _BuilderConfig):
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                monitor.step_complete("Building engine", step)
            monitor.phase_finish("Building engine")
        shapes = config.profiles[0].shapes if config.profiles else {}
        tensors = [dict(t, profile=shapes[t["name"]]) if t["mode"] == "INPUT" and t["name"] in shapes else t
                   for t in network.tensors]
        if any(t["mode"] == "INPUT" and "profile" not in t for t in tensors):
            return None  # a dynamic input without a profile: TensorRT refuses to build
        return json.dumps({"model": network.name, "tensors": tensors}).encode()


def engine_bytes(model: str, manifest) -> bytes:
    """The "serialized engine" for ``model`` with the manifest's tensors and profile."""
    tensors = [{"name": s.name, "mode": "INPUT", "dtype": s.dtype, "profile": [s.min, s.opt, s.max]}
               for s in manifest.inputs]
    tensors += [{"name": s.name, "mode": "OUTPUT", "dtype": s.dtype} for s in manifest.outputs]
    return json.dumps({"model": model, "tensors": tensors}).encode()


def install(monkeypatch, *, version: str = "10.3.0", capability=(8, 7)) -> Gpu:
    """Put the stand-in in ``sys.modules`` as ``tensorrt`` and ``pycuda.driver`` for one test."""
    global GPU
    GPU = Gpu()
    Device.capability = capability
    me = sys.modules[__name__]
    trt = types.ModuleType("tensorrt")
    for name in ("TensorIOMode", "DataType", "nptype", "ILogger", "IOutputAllocator", "Runtime", "MemoryPoolType",
                 "BuilderFlag", "IProgressMonitor", "OnnxParser", "Builder"):
        setattr(trt, name, getattr(me, name))
    trt.__version__ = version
    driver = types.ModuleType("pycuda.driver")
    for name in ("init", "mem_get_info", "Device", "Stream", "pagelocked_empty", "mem_alloc", "memcpy_htod_async",
                 "memcpy_dtoh_async"):
        setattr(driver, name, getattr(me, name))
    driver.Error = CudaError
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    import talkerd.engines.tensorrt_backend as backend
    monkeypatch.setattr(backend, "_primary_context", None)
    return GPU
