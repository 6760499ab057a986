"""tools/jetson-acceptance: its refusal here, and its whole flow on the TensorRT stand-in with a small engine."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from . import trt_standin
from .conftest import DEFAULT_CONFIG, ROOT
from .engine_helpers import make_engines, write_config

SCRIPT = ROOT / "tools" / "jetson-acceptance"


def _load_script():
    loader = importlib.machinery.SourceFileLoader("jetson_acceptance", str(SCRIPT))
    spec = importlib.util.spec_from_loader("jetson_acceptance", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_without_tensorrt_it_exits_69_with_one_clear_line():
    result = subprocess.run([sys.executable, str(SCRIPT), "--config", str(DEFAULT_CONFIG)],
                            capture_output=True, text=True)
    assert result.returncode == 69
    assert "TensorRT is not usable here: TensorRT is not available" in result.stderr
    assert "Traceback" not in result.stderr
    assert "machine" in result.stdout  # the platform facts came first


def test_usage_and_config_errors():
    assert subprocess.run([sys.executable, str(SCRIPT), "--runs", "0"], capture_output=True).returncode == 2
    bad = subprocess.run([sys.executable, str(SCRIPT), "--config", "/nonexistent.toml"], capture_output=True, text=True)
    assert bad.returncode == 78 and "no such config file" in bad.stderr


def test_compare_figures():
    script = _load_script()
    reference = np.array([1.0, -2.0, 2.0], np.float32)
    max_abs, rel = script.compare(reference, reference + np.array([0.0, 0.0, 0.3], np.float32))
    assert max_abs == pytest.approx(0.3, rel=1e-6) and rel == pytest.approx(0.1, rel=1e-6)
    assert script.compare(reference, reference) == (0.0, 0.0)


@pytest.mark.slow
def test_whole_flow_on_the_standin(tmp_path, monkeypatch, capsys):
    """Builds the small engine, checks auto picks TensorRT, compares both backends (the stand-in computes
    the same function as the ONNX), times them, and compares memory with ``talkerd plan --json``."""
    cfg = make_engines(tmp_path)
    config = write_config(tmp_path / "talkerd.toml", cfg, face_engine="affine")
    gpu = trt_standin.install(monkeypatch)
    script = _load_script()
    with pytest.raises(SystemExit) as ended:
        script.main(["--config", str(config), "--engine", "affine", "--runs", "3", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "[PASS] engines built" in out
    assert "[PASS] auto chooses TensorRT" in out
    for which in ("min", "opt", "max"):
        assert f"[PASS] {which}: y relative L2 error 0.00e+00" in out
        assert f"[PASS] {which}: pos relative L2 error 0.00e+00" in out
    assert "tensorrt median / p95 ms (opt shape)" in out and "onnxruntime median / p95 ms (opt shape)" in out
    assert "TensorRT footprint" in out and "free CUDA memory drop while loading" in out
    assert "== memory against the plan" in out and "face: measured / planned" in out
    assert gpu.executions >= 3 + 4  # min/opt/max compare runs + warm-up and three timed runs
    assert ended.value.code in (0, 1)
    figures = (tmp_path / "r.json").read_text()
    assert "TensorRT footprint" in figures
