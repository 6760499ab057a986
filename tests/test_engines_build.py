"""``talkerd-build-engine``: exit codes here (no TensorRT), and a build → run round trip on the stand-in."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from talkerd.engines import FallbackEngine, open_engine
from talkerd.engines.build import main
from talkerd.errors import ExitCode

from . import trt_standin
from .engine_helpers import expected, make_engines, write_config


@pytest.fixture
def setup(tmp_path):
    """A config file whose engines section points at a temporary engine folder with the affine engine."""
    cfg = make_engines(tmp_path)
    config = write_config(tmp_path / "talkerd.toml", cfg)
    return cfg, str(config)


def test_without_tensorrt_it_says_so_and_exits_69(setup, monkeypatch, capsys):
    cfg, config = setup
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["--config", config]) == ExitCode.UNAVAILABLE == 69
    err = capsys.readouterr().err
    assert "cannot build TensorRT engines here: TensorRT is not available" in err
    assert "Traceback" not in err
    assert not list(cfg.build_dir.glob("*/*.engine"))


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--engine", "nope"], "unknown engine nope (engines in"),
    (["--workspace-mb", "1"], "--workspace-mb must be at least 16"),
    (["--workspace-mb", "lots"], "invalid int value"),
])
def test_usage_errors_exit_2(setup, capsys, argv, message):
    _, config = setup
    assert main(["--config", config, *argv]) == ExitCode.USAGE
    assert message in capsys.readouterr().err


def test_bad_config_exits_78(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "missing.toml")]) == ExitCode.CONFIG
    assert "missing.toml: no such config file" in capsys.readouterr().err


def test_build_then_run_on_the_standin(setup, monkeypatch, capsys):
    cfg, config = setup
    trt_standin.install(monkeypatch, version="10.3.0", capability=(8, 7))
    assert main(["--config", config, "--engine", "affine"]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "Building engine (2 steps)" in err and "Building engine done in" in err  # the progress display
    engine_path = cfg.build_dir / "affine" / "affine-trt10.3.0-sm87-fp16.engine"
    assert f"affine: built {engine_path}" in out
    sidecar = json.loads((engine_path.parent / (engine_path.name + ".json")).read_text())
    manifest_sha = open_engine(cfg, "affine", "onnxruntime").manifest.sha256
    assert sidecar["tensorrt_version"] == "10.3.0" and sidecar["compute_capability"] == "8.7"
    assert sidecar["onnx_sha256"] == manifest_sha and sidecar["flags"] == ["FP16"]
    assert sidecar["device_memory_bytes"] > 0 and sidecar["built_at"].endswith("+00:00")
    config_used = trt_standin.Builder.last_config
    assert trt_standin.BuilderFlag.FP16 in config_used.flags
    assert config_used.profiles[0].shapes == {"x": [[1, 1], [1, 8], [1, 64]]}  # the manifest's profile
    timing = cfg.build_dir / "timing-trt10.3.0-sm87.cache"
    assert timing.read_bytes() == b"+timing"

    engine = open_engine(cfg, "affine")
    assert isinstance(engine, FallbackEngine) and engine.backend == "tensorrt"
    x = np.array([[0.5, -1.0, 2.0]], np.float32)
    out_arrays = engine.run({"x": x})
    np.testing.assert_array_equal(out_arrays["y"], expected(x)["y"])
    np.testing.assert_array_equal(out_arrays["pos"], expected(x)["pos"])

    assert main(["--config", config]) == ExitCode.OK
    assert "affine: up to date" in capsys.readouterr().out
    assert main(["--config", config, "--force", "--quiet"]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "built" in out and "Building engine" not in err
    assert timing.read_bytes() == b"+timing+timing"  # the cache was read back and extended
    assert sidecar["profile"] == {"x": [[1, 1], [1, 8], [1, 64]]}

    # A new profile in the manifest: the old engine is not used, and the builder rebuilds it.
    manifest = cfg.dir / "affine" / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("max = [1, 64]", "max = [1, 32]"))
    assert open_engine(cfg, "affine").backend == "onnxruntime"
    assert main(["--config", config, "--quiet"]) == ExitCode.OK
    assert "affine: built" in capsys.readouterr().out
    assert open_engine(cfg, "affine").backend == "tensorrt"


def test_onnx_that_does_not_match_exits_69(setup, monkeypatch, capsys):
    cfg, config = setup
    trt_standin.install(monkeypatch)
    onnx_path = cfg.dir / "affine" / "affine.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"x")
    assert main(["--config", config]) == ExitCode.UNAVAILABLE
    assert f"{onnx_path} has sha256" in capsys.readouterr().err


def test_int8_without_calibration_data_fails_clearly(setup, monkeypatch, capsys):
    cfg, config = setup
    trt_standin.install(monkeypatch)
    manifest = cfg.dir / "affine" / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('precision = "fp16"', 'precision = "int8"\ncalibration = "calib"'))
    (cfg.dir / "affine" / "calib").mkdir()
    assert main(["--config", config, "--quiet"]) == ExitCode.SOFTWARE == 70
    err = capsys.readouterr().err
    assert f"calibration set {cfg.dir / 'affine' / 'calib'} has no .npz files" in err
    assert not list(cfg.build_dir.glob("affine/*.engine"))
