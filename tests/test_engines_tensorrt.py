"""The TensorRT backend, engine selection and the CPU fallback, against tests/trt_standin.py.

TensorRT and CUDA cannot be installed here, so the stand-in imitates their Python APIs; ONNX Runtime
(the fallback) is the real one, on a real ONNX computing the same function as the stand-in's engine.
"""
from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from talkerd.engines import EngineManifest, FallbackEngine, load_manifest, open_engine
from talkerd.engines.base import Engine
from talkerd.engines.sidecar import Sidecar, engine_file_name, write_sidecar
from talkerd.engines.tensorrt_backend import TensorRTEngine
from talkerd.errors import EngineError

from . import trt_standin
from .engine_helpers import expected, make_engines


def build_engine(cfg, *, version="10.3.0", capability="8.7", onnx_sha=None, manifest=None, data=None,
                 precision="fp16"):
    """Write a stand-in engine file and its sidecar as talkerd-build-engine would."""
    manifest = manifest or load_manifest(cfg.dir / "affine")
    folder = cfg.build_dir / "affine"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / engine_file_name("affine", version, capability, "fp16")
    path.write_bytes(data if data is not None else trt_standin.engine_bytes("affine", manifest))
    write_sidecar(path, Sidecar(engine="affine", manifest_version="1.0.0", onnx_sha256=onnx_sha or manifest.sha256,
                                tensorrt_version=version, compute_capability=capability, precision=precision,
                                flags=["FP16"]))
    return path


@pytest.fixture
def gpu(monkeypatch):
    return trt_standin.install(monkeypatch, version="10.3.0", capability=(8, 7))


@pytest.fixture
def cfg(tmp_path):
    return make_engines(tmp_path)


# --- the backend ------------------------------------------------------------------------------------

def test_tensorrt_run_copies_in_executes_and_copies_out_with_one_sync(gpu, cfg):
    build_engine(cfg)
    engine = open_engine(cfg, "affine", "tensorrt")
    assert isinstance(engine, TensorRTEngine) and engine.backend == "tensorrt"
    x = np.array([[-1.0, 2.0, 0.5, -3.0, 4.0]], np.float32)
    out = engine.run({"x": x})
    np.testing.assert_array_equal(out["y"], expected(x)["y"])
    np.testing.assert_array_equal(out["pos"], expected(x)["pos"])
    assert (gpu.synchronizations, gpu.htod, gpu.dtoh, gpu.executions) == (1, 1, 2, 1)
    for _ in range(3):
        engine.run({"x": x})
    assert gpu.synchronizations == 4 and gpu.executions == 4
    assert gpu.pushes == gpu.pops > 0  # the CUDA context is pushed and popped around every call
    assert engine.memory_bytes() > 1 << 20


def test_buffers_grow_only_for_larger_shapes(gpu, cfg):
    build_engine(cfg)
    engine = open_engine(cfg, "affine", "tensorrt")
    rng = np.random.default_rng(0)
    for n in (8, 4, 8, 1):
        x = rng.standard_normal((1, n)).astype(np.float32)
        np.testing.assert_array_equal(engine.run({"x": x})["y"], expected(x)["y"])
    first = engine.buffer_allocations()
    assert first["x"] == 1 and first["y"] == 1
    x = rng.standard_normal((1, 64)).astype(np.float32)
    np.testing.assert_array_equal(engine.run({"x": x})["y"], expected(x)["y"])
    assert engine.buffer_allocations()["x"] == 2 and engine.buffer_allocations()["y"] == 2


def test_data_dependent_output_sizes_follow_the_data(gpu, cfg):
    build_engine(cfg)
    engine = open_engine(cfg, "affine", "tensorrt")
    results = []
    for x in (np.full((1, 6), -1.0, np.float32), np.ones((1, 40), np.float32), np.array([[0.0, 1.0]], np.float32)):
        out = engine.run({"x": x})
        np.testing.assert_array_equal(out["pos"], expected(x)["pos"])
        results.append(out)
    assert results[0]["pos"].shape == (2, 0) and results[1]["pos"].shape == (2, 40)
    # Outputs are copies: a later call must not change an earlier result held by the caller.
    np.testing.assert_array_equal(results[1]["y"], np.full((1, 40), 3.0, np.float32))
    assert gpu.synchronizations == 3


def test_out_of_profile_shapes_are_refused_before_the_gpu(gpu, cfg):
    build_engine(cfg)
    engine = open_engine(cfg, "affine", "tensorrt")
    with pytest.raises(EngineError, match=r"input x has shape \[1, 65\], outside the profile"):
        engine.run({"x": np.zeros((1, 65), np.float32)})
    assert gpu.executions == 0 and gpu.htod == 0


def test_engine_built_with_another_profile_is_refused(gpu, cfg):
    manifest = load_manifest(cfg.dir / "affine")
    other = EngineManifest.model_validate({
        **manifest.model_dump(), "inputs": [{**manifest.inputs[0].model_dump(), "max": (1, 32)}]})
    build_engine(cfg, manifest=other)
    with pytest.raises(EngineError, match=r"input x has profile min/opt/max .* rebuild it"):
        open_engine(cfg, "affine", "tensorrt")


def test_close_frees_device_memory(gpu, cfg):
    from talkerd.engines.tensorrt_backend import cuda_mem_info

    assert cuda_mem_info() is None  # no engine yet: CUDA is not even initialised
    build_engine(cfg)
    engine = open_engine(cfg, "affine", "tensorrt")
    engine.run({"x": np.ones((1, 8), np.float32)})
    assert gpu.memory
    free, total = cuda_mem_info()
    assert total - free == sum(block.size for block in gpu.memory.values()) > 0
    engine.close()
    assert not gpu.memory and engine.memory_bytes() == 0
    assert cuda_mem_info()[0] == total
    engine.close()  # twice is harmless


# --- choosing the backend ---------------------------------------------------------------------------

@pytest.mark.parametrize("sidecar, said", [
    ({"version": "10.1.0"}, "TensorRT 10.1.0"),
    ({"capability": "7.2"}, "compute capability 7.2"),
    ({"onnx_sha": "f" * 64}, "another ONNX"),
    ({"precision": "fp32"}, "precision fp32"),
])
def test_mismatched_engine_falls_back_to_onnxruntime_with_one_line(gpu, cfg, caplog, sidecar, said):
    build_engine(cfg, **sidecar)
    caplog.set_level(logging.INFO, logger="talkerd.engines")
    engine = open_engine(cfg, "affine")
    assert engine.backend == "onnxruntime"
    lines = [r.getMessage() for r in caplog.records if "not using TensorRT" in r.getMessage()]
    assert len(lines) == 1 and said in lines[0] and "TensorRT 10.3.0 and compute capability 8.7" in lines[0]
    x = np.array([[1.0, -2.0]], np.float32)
    np.testing.assert_array_equal(engine.run({"x": x})["y"], expected(x)["y"])
    assert gpu.executions == 0
    with pytest.raises(EngineError, match="backend tensorrt: no engine built for TensorRT 10.3.0"):
        open_engine(cfg, "affine", "tensorrt")


def test_engine_without_sidecar_is_not_trusted(gpu, cfg, caplog):
    path = build_engine(cfg)
    path.with_name(path.name + ".json").unlink()
    caplog.set_level(logging.INFO, logger="talkerd.engines")
    assert open_engine(cfg, "affine").backend == "onnxruntime"
    assert "no readable sidecar" in caplog.text and gpu.executions == 0


def test_the_matching_engine_is_chosen_among_several(gpu, cfg):
    build_engine(cfg, version="10.1.0", data=b"not an engine")
    build_engine(cfg, version="10.3.0")
    engine = open_engine(cfg, "affine")
    assert isinstance(engine, FallbackEngine) and engine.backend == "tensorrt"
    assert engine.run({"x": np.ones((1, 3), np.float32)})["y"].tolist() == [[3.0, 3.0, 3.0]]
    assert gpu.executions == 1


def test_without_tensorrt_installed_auto_uses_onnxruntime(monkeypatch, cfg, caplog):
    build_engine(cfg)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt raises ImportError
    caplog.set_level(logging.INFO, logger="talkerd.engines")
    engine = open_engine(cfg, "affine")
    assert engine.backend == "onnxruntime"
    assert "not using TensorRT: TensorRT is not available" in caplog.text


def test_engine_that_does_not_deserialize_falls_back(gpu, cfg, caplog):
    build_engine(cfg, data=b"\x00garbage")
    caplog.set_level(logging.INFO, logger="talkerd.engines")
    assert open_engine(cfg, "affine").backend == "onnxruntime"
    assert "cannot deserialize" in caplog.text


# --- the fallback during a turn ---------------------------------------------------------------------

def test_tensorrt_failure_mid_run_is_rerun_on_onnxruntime(gpu, cfg, caplog):
    build_engine(cfg)
    engine = open_engine(cfg, "affine")
    assert isinstance(engine, FallbackEngine) and engine.backend == "tensorrt"
    gpu.fail_on_execution = 3
    caplog.set_level(logging.INFO, logger="talkerd.engines")
    rng = np.random.default_rng(1)
    chunks = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(6)]  # one "turn" of six calls
    outputs = [engine.run({"x": x}) for x in chunks]
    for x, out in zip(chunks, outputs):
        np.testing.assert_allclose(out["y"], expected(x)["y"], rtol=1e-6)
        np.testing.assert_array_equal(out["pos"], expected(x)["pos"])
    assert gpu.executions == 3  # calls 4..6 never went back to TensorRT
    assert engine.degraded and engine.backend == "onnxruntime" and engine.preferred == "tensorrt"
    assert "CUDA error 719" in engine.reason
    summary = engine.status()
    assert summary["degraded"] is True and summary["backend"] == "onnxruntime" and "719" in summary["reason"]
    assert len([r for r in caplog.records if "degraded" in r.getMessage()]) == 1
    assert not gpu.memory  # the failed TensorRT engine released its device memory


def test_forced_tensorrt_failure_is_an_engine_error(gpu, cfg):
    build_engine(cfg)
    engine = open_engine(cfg, "affine", "tensorrt")
    gpu.fail_on_execution = 1
    with pytest.raises(EngineError, match="engine affine: TensorRT run failed: CUDA error 719"):
        engine.run({"x": np.ones((1, 4), np.float32)})
    assert gpu.pushes == gpu.pops  # the context is popped even when the run fails


def test_bad_request_does_not_degrade(gpu, cfg):
    build_engine(cfg)
    engine = open_engine(cfg, "affine")
    with pytest.raises(EngineError, match="outside the profile"):
        engine.run({"x": np.zeros((1, 100), np.float32)})
    assert not engine.degraded and engine.backend == "tensorrt"


class FailingAfter(Engine):
    """Stands in for a TensorRT engine on the GPU that faults at its n-th call (CUDA is not available here);
    until then it answers with the real ONNX Runtime engine it wraps."""

    backend = "tensorrt"

    def __init__(self, inner: Engine, fail_at: int) -> None:
        super().__init__(inner.manifest)
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def load(self) -> None:
        pass

    def run(self, feeds):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("CUDA error 700: an illegal memory access was encountered")
        return self.inner.run(feeds)

    def memory_bytes(self) -> int:
        return 0

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_speech_turn_survives_a_tensorrt_fault_mid_sentence(default_config):
    """The real split Piper engines: a sentence synthesised with a fault in its third audio chunk sounds
    exactly like one without a fault."""
    from talkerd.speak.tts import PiperTts, Voice

    cfg, tts_cfg = default_config.engines, default_config.tts
    try:
        text = open_engine(cfg, tts_cfg.text_engine, "onnxruntime")
        audio = open_engine(cfg, tts_cfg.audio_engine, "onnxruntime")
    except EngineError as exc:
        pytest.skip(f"split engines not provisioned: {exc.message}")
    voice = Voice.load(tts_cfg.voice_config)
    window = audio.manifest.input("z_p").opt[-1]
    sentence = "The museum opens at nine in the morning and closes at six in the evening, every day except Monday."
    clean = np.concatenate([c.audio for c in PiperTts(text, audio, voice, tts_cfg, window).synthesize(sentence)])
    fragile = FallbackEngine(FailingAfter(audio, fail_at=3),
                             lambda: open_engine(cfg, tts_cfg.audio_engine, "onnxruntime"))
    tts = PiperTts(text, fragile, voice, tts_cfg, window)
    chunks = list(tts.synthesize(sentence))
    assert tts.audio_runs >= 4 and len(chunks) >= 4
    survived = np.concatenate([c.audio for c in chunks])
    np.testing.assert_array_equal(survived, clean)
    assert fragile.degraded and "illegal memory access" in fragile.reason
