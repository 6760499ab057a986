"""The engine layer on ONNX Runtime: manifests, ONNX location and sha256 checks, real models."""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talkerd.config import EnginesConfig, parse_config
from talkerd.engines import files, load_manifest, locate_onnx, open_engine
from talkerd.errors import ConfigError, EngineError

from .conftest import DEFAULT_CONFIG, MODELS, ROOT
from .engine_helpers import AFFINE_MANIFEST, expected, make_engines, write_config


# --- ONNX Runtime on a small real ONNX ---------------------------------------------------------------

def test_auto_without_built_engine_runs_onnxruntime(tmp_path, caplog):
    cfg = make_engines(tmp_path)
    caplog.set_level(logging.INFO, logger="talkerd.engines")
    engine = open_engine(cfg, "affine")
    x = np.array([[-1.5, 0.0, 2.0, 3.25, -0.5]], np.float32)
    out = engine.run({"x": x})
    np.testing.assert_array_equal(out["y"], expected(x)["y"])
    np.testing.assert_array_equal(out["pos"], [[0, 0], [2, 3]])  # data-dependent size
    assert engine.backend == "onnxruntime" and not engine.degraded
    assert "no TensorRT engine built" in caplog.text
    assert engine.status()["backend"] == "onnxruntime"
    assert engine.metadata == {"window_frames": "8"}
    engine.close()
    with pytest.raises(EngineError, match="after close"):
        engine.run({"x": x})


def test_onnxruntime_session_is_sequential_without_spinning(tmp_path):
    cfg = make_engines(tmp_path).model_copy(update={"cpu_threads": 2})
    engine = open_engine(cfg, "affine", "onnxruntime")
    options = engine._session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    engine.warm_up()  # zeros at the opt shape [1, 8]
    assert engine.run(engine.manifest.zero_feeds("max"))["y"].shape == (1, 64)


@pytest.mark.parametrize("feeds, message", [
    ({"x": np.zeros((1, 65), np.float32)}, r"input x has shape \[1, 65\], outside the profile min \[1, 1\] .. max \[1, 64\]"),
    ({"x": np.zeros((2, 8), np.float32)}, r"input x has shape \[2, 8\]"),
    ({"x": np.zeros((8,), np.float32)}, r"input x has shape \[8\]"),
    ({"x": np.zeros((1, 8), np.float64)}, r"input x must be float32, got float64"),
    ({}, r"missing \['x'\]"),
    ({"x": np.zeros((1, 8), np.float32), "z": np.zeros(1)}, r"unknown \['z'\]"),
])
def test_feeds_outside_the_manifest_are_refused(tmp_path, feeds, message):
    engine = open_engine(make_engines(tmp_path), "affine")
    with pytest.raises(EngineError, match=message):
        engine.run(feeds)


def test_onnx_that_does_not_match_its_manifest_is_refused_at_load(tmp_path):
    cfg = make_engines(tmp_path)
    manifest = cfg.dir / "affine" / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('name = "x"', 'name = "features"'))
    with pytest.raises(EngineError, match=r"affine.onnx does not match its manifest: inputs \['x'\]"):
        open_engine(cfg, "affine")


def test_per_engine_backend_override(tmp_path):
    cfg = make_engines(tmp_path).model_copy(update={"backends": {"affine": "tensorrt"}})
    with pytest.raises(EngineError, match="engine affine: backend tensorrt: no TensorRT engine in"):
        open_engine(cfg, "affine")
    assert open_engine(cfg, "affine", "onnxruntime").backend == "onnxruntime"
    with pytest.raises(EngineError, match="unknown backend 'cuda'"):
        open_engine(cfg, "affine", "cuda")


def test_config_rejects_unknown_backend_override(tmp_path):
    from talkerd.tomlfile import read_toml

    data = read_toml(DEFAULT_CONFIG)
    data["engines"]["backends"] = {"piper-joe-text": "gpu"}
    with pytest.raises(ConfigError, match=r"engines\.backends\.piper-joe-text"):
        parse_config(data, source="x.toml", base_dir=DEFAULT_CONFIG.parent)


def test_bench_prints_a_row_per_distinct_shape(tmp_path, capsys):
    from talkerd.engines.bench import main as bench_main

    config = write_config(tmp_path / "talkerd.toml", make_engines(tmp_path))
    assert bench_main(["--config", str(config), "--engine", "affine", "--runs", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["engine", "backend", "shape"]
    assert [line.split()[2] for line in lines[1:]] == ["min", "opt", "max"]
    assert all(line.startswith("affine") and "onnxruntime" in line for line in lines[1:])
    assert bench_main(["--config", str(config), "--engine", "nope"]) == 78  # no such manifest
    assert bench_main(["--runs", "0"]) == 2


# --- manifests -------------------------------------------------------------------------------------

GOOD_SHA = "0" * 64


def _manifest(tmp_path: Path, text: str, folder: str = "affine") -> Path:
    engine_dir = tmp_path / folder
    engine_dir.mkdir()
    (engine_dir / "manifest.toml").write_text(text)
    return engine_dir


def _good() -> str:
    return AFFINE_MANIFEST.format(name="affine", sha256=GOOD_SHA)


@pytest.mark.parametrize("edit, field, message", [
    (lambda t: t.replace(f'sha256 = "{GOOD_SHA}"\n', ""), "sha256", "required key is missing"),
    (lambda t: t.replace(GOOD_SHA, "abc"), "sha256", "64 hexadecimal digits"),
    (lambda t: t.replace('kind = "face"', 'kind = "asr"'), "kind", "'tts', 'face', 'turn' or 'embedding'"),
    (lambda t: t.replace("max = [1, 64]", "max = [1, 4]"), "inputs.0", "min <= opt <= max"),
    (lambda t: t.replace("max = [1, 64]", "max = [1, 64, 3]"), "inputs.0", "same number of dimensions"),
    (lambda t: t.replace('dtype = "int64"', 'dtype = "double"'), "outputs.1.dtype", "float32"),
    (lambda t: t.replace('precision = "fp16"', 'precision = "int8"'), "(top level)", "needs a calibration set"),
    (lambda t: t.replace('precision = "fp16"', 'calibration = "calib"'), "(top level)", "only used with precision int8"),
    (lambda t: t.replace('onnx = "affine.onnx"', 'onnx = "../x.onnx"'), "onnx", "plain file name"),
    (lambda t: t.replace("memory_mb = 1", "memory_mb = 1\nmemroy_mb = 2"), "memroy_mb", "unknown key"),
    (lambda t: t.replace("memory_mb = 1", "memory_mb = 0"), "memory_mb", "greater than 0"),
    (lambda t: t.replace('name = "pos"', 'name = "y"'), "(top level)", "unique"),
])
def test_manifest_errors_name_file_and_field(tmp_path, edit, field, message):
    engine_dir = _manifest(tmp_path, edit(_good()))
    with pytest.raises(ConfigError) as caught:
        load_manifest(engine_dir)
    text = caught.value.message
    assert f"{engine_dir / 'manifest.toml'}: {field}" in text and message in text, text


def test_manifest_name_must_match_folder(tmp_path):
    engine_dir = _manifest(tmp_path, _good(), folder="other")
    with pytest.raises(ConfigError, match="name: 'affine' must equal the engine's folder name 'other'"):
        load_manifest(engine_dir)


def test_manifest_missing_or_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such engine manifest"):
        load_manifest(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_manifest(_manifest(tmp_path, "name = ["))


def test_repository_manifests_are_valid():
    names = sorted(p.parent.name for p in (ROOT / "engines").glob("*/manifest.toml"))
    assert {"piper-joe-text", "piper-joe-audio"} <= set(names)
    for name in names:
        manifest = load_manifest(ROOT / "engines" / name)
        assert manifest.name == name and manifest.memory_mb > 0


# --- finding the ONNX and checking its sha256 --------------------------------------------------------

def test_onnx_in_build_dir_is_found_and_sha_cached(tmp_path, monkeypatch):
    cfg = make_engines(tmp_path, onnx_in_build_dir=True)
    manifest = load_manifest(cfg.dir / "affine")
    hashed = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: hashed.append(p) or real(p))
    path = locate_onnx(manifest, cfg)
    assert path == cfg.build_dir / "affine" / "affine.onnx"
    assert locate_onnx(manifest, cfg) == path
    assert len(hashed) == 1  # the second start trusts the cache (same size and mtime)
    assert (cfg.build_dir / files.CACHE_FILE).is_file()
    # A replaced file (new mtime) is hashed again and refused.
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(EngineError) as caught:
        locate_onnx(manifest, cfg)
    assert str(path) in caught.value.message and manifest.sha256 in caught.value.message
    assert hashlib.sha256(bytes(data)).hexdigest() in caught.value.message
    assert len(hashed) == 2


def test_sha_mismatch_refuses_to_open(tmp_path):
    cfg = make_engines(tmp_path)
    onnx_path = cfg.dir / "affine" / "affine.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(EngineError, match=r"affine.onnx has sha256 [0-9a-f]{64}, the manifest expects"):
        open_engine(cfg, "affine", "onnxruntime")


def test_missing_onnx_names_both_places(tmp_path):
    cfg = make_engines(tmp_path)
    (cfg.dir / "affine" / "affine.onnx").unlink()
    with pytest.raises(EngineError) as caught:
        open_engine(cfg, "affine")
    assert "affine.onnx not found" in caught.value.message
    assert str(cfg.dir / "affine") in caught.value.message and str(cfg.build_dir / "affine") in caught.value.message


# --- real models ------------------------------------------------------------------------------------

PIPER = MODELS / "en_US-joe-medium.onnx"
PIPER_MANIFEST = """\
name = "joe"
kind = "tts"
version = "1"
onnx = "en_US-joe-medium.onnx"
sha256 = "{sha}"
precision = "fp32"
sample_rate = 22050
memory_mb = 120
[[inputs]]
name = "input"
dtype = "int64"
min = [1, 1]
opt = [1, 64]
max = [1, 512]
[[inputs]]
name = "input_lengths"
dtype = "int64"
min = [1]
opt = [1]
max = [1]
[[inputs]]
name = "scales"
dtype = "float32"
min = [3]
opt = [3]
max = [3]
[[outputs]]
name = "output"
dtype = "float32"
"""


@pytest.mark.slow
@pytest.mark.skipif(not PIPER.exists(), reason="the Piper voice is not provisioned (tools/provision_models.py)")
def test_real_piper_voice_on_onnxruntime(tmp_path):
    import onnxruntime as ort

    engine_dir = tmp_path / "engines" / "joe"
    engine_dir.mkdir(parents=True)
    (engine_dir / "en_US-joe-medium.onnx").symlink_to(PIPER.resolve())
    (engine_dir / "manifest.toml").write_text(PIPER_MANIFEST.format(sha=files.sha256_file(PIPER)))
    cfg = EnginesConfig(dir=tmp_path / "engines", build_dir=tmp_path / "build", cpu_threads=2)
    engine = open_engine(cfg, "joe")
    ids = np.array([[1, 0, 20, 0, 59, 0, 24, 0, 27, 0, 3, 0, 2]], np.int64)  # ^ h ə l oʊ . $ with pads
    feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], np.int64),
             "scales": np.array([0.0, 1.0, 0.0], np.float32)}
    audio = engine.run(feeds)["output"]
    assert audio.ndim == 4 and audio.shape[:3] == (1, 1, 1)
    assert audio.shape[3] % 256 == 0 and audio.shape[3] >= 256 * ids.shape[1]
    assert 0.01 < float(np.abs(audio).max()) <= 1.5
    np.testing.assert_array_equal(engine.run(feeds)["output"], audio)  # noise scales 0: repeatable
    reference = ort.InferenceSession(str(PIPER), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(audio, reference, atol=1e-5)
    assert engine.memory_bytes() >= 0
    # The figure is the process's growth while the session loads, so measure it in a fresh process
    # (in this one, memory freed by earlier tests can be reused without the resident size growing).
    script = (
        "import sys; from pathlib import Path; from talkerd.config import EnginesConfig; from talkerd.engines import open_engine;"
        f"cfg = EnginesConfig(dir=Path({str(tmp_path / 'engines')!r}), build_dir=Path({str(tmp_path / 'build')!r}), cpu_threads=2);"
        "print(open_engine(cfg, 'joe').memory_bytes())"
    )
    fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(fresh.stdout.split()[-1]) > 10 << 20  # the weights alone are ~60 MB


@pytest.mark.slow
def test_repository_piper_split_engines_run(default_config):
    cfg = default_config.engines
    try:
        text = open_engine(cfg, default_config.tts.text_engine, "auto")
        audio = open_engine(cfg, default_config.tts.audio_engine, "auto")
    except EngineError as exc:
        pytest.skip(f"split engines not provisioned: {exc.message}")
    text.warm_up()
    window = audio.manifest.input("z_p").opt[-1]
    out = audio.run(audio.manifest.zero_feeds("opt"))
    assert out["audio"].size == window * 256
    assert text.backend == audio.backend == "onnxruntime"
