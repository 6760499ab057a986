"""The face engine on real ONNX Runtime with the committed ONNX, on speech from the real Piper voice."""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest

from talkerd.speak import mouth_engine as face, visemes
from talkerd.config import EnginesConfig, FaceConfig
from talkerd.errors import ConfigError, EngineError, ExitCode
from tools.train_face.sentences import HELD_OUT as held_out_sentences

ROOT = Path(__file__).resolve().parent.parent
ENGINE_DIR = Path(os.environ.get("TALKERD_FACE_ENGINE_DIR", ROOT / "engines/face-mouth"))
ONNX = ENGINE_DIR / "model.onnx"
VOICE = ROOT / "var/models/en_US-joe-medium.onnx"

JAW, LIPS = 0, 1

# Written for the evaluation and made from none of the training templates; the tests take the first eight.
HELD_OUT = held_out_sentences[:8]


def open_face(build_dir: Path, engine_dir: Path = ENGINE_DIR) -> face.FaceEngine:
    """The engine folder through the daemon's own loading path, on ONNX Runtime with one thread."""
    engines = EnginesConfig(dir=engine_dir.parent, build_dir=build_dir, backend="onnxruntime", cpu_threads=1)
    return face.FaceEngine.load(FaceConfig(engine=engine_dir.name), engines)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> face.FaceEngine:
    return open_face(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def speech():
    """The held-out sentences spoken by Piper as the daemon speaks them (noise off: repeatable), with
    their phoneme timings."""
    if not VOICE.exists():
        pytest.skip("Piper voice not provisioned (scripts/setup.sh)")
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(str(VOICE), include_alignments=True)
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    result = []
    for text in HELD_OUT:
        chunks = list(voice.synthesize(text, config, include_alignments=True))
        pairs = [(a.phoneme, int(a.num_samples)) for chunk in chunks for a in chunk.phoneme_alignments]
        audio = np.concatenate([chunk.audio_int16_array for chunk in chunks])
        rate = chunks[0].sample_rate
        result.append((audio, rate, visemes.timings_from_alignments(pairs, rate)))
    return result


def reads_closed(track: np.ndarray) -> np.ndarray:
    """The documented closure test: lips_closed ≥ 0.5 or jaw_open ≤ 0.15."""
    return (track[:, LIPS] >= 0.5) | (track[:, JAW] <= 0.15)


def test_held_out_speech_agrees_with_the_duration_track(engine, speech):
    predicted, reference, bilabial = [], [], []
    for audio, rate, timings in speech:
        duration = len(audio) / rate
        track = engine.mouth_track(audio, rate, 30)
        assert track.shape == (math.ceil(duration * 30), 4)
        predicted.append(track)
        reference.append(visemes.mouth_track(timings, 30, duration))
        bilabial.append(visemes.bilabial_frames(timings, 30, duration))
    pred, ref, mask = np.concatenate(predicted), np.concatenate(reference), np.concatenate(bilabial)
    assert mask.sum() >= 60
    correlation = np.corrcoef(pred[:, JAW], ref[:, JAW])[0, 1]
    closed = reads_closed(pred[mask]).mean()
    print(f"held-out jaw correlation {correlation:.3f}, p/b/m closed {100 * closed:.1f}% of {mask.sum()} frames")
    assert correlation >= 0.8
    assert closed >= 0.9
    # and the vowels are open: most frames the durations call wide open are clearly open
    vowels = ref[:, JAW] >= 0.6
    assert (pred[vowels, JAW] >= 0.3).mean() >= 0.8


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_silence_in_closed_mouth_out(engine, rate):
    track = engine.mouth_track(np.zeros(2 * rate, dtype=np.int16), rate, 30)
    assert track.shape == (60, 4)
    assert reads_closed(track).all()
    assert track[:, JAW].max() <= 0.15


def _single_pass(engine: face.FaceEngine, audio: np.ndarray, rate: int) -> np.ndarray:
    """The network over the whole signal in one run, from a copy of the ONNX with its time axis made
    variable (its layers are all convolutions, so it accepts any length)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(ONNX))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "frames"
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "frames"
    del model.graph.value_info[:]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    mel = face.log_mel(audio, rate)
    pad = np.full((face.N_MELS, engine.context), face.SILENCE_LOG, dtype=np.float32)
    whole = np.concatenate([pad, mel, pad], axis=1)[None]
    (out,) = session.run(None, {"mel": whole})
    return out[0, engine.context : engine.context + mel.shape[1]]


def test_joined_windows_have_no_seams(engine, speech):
    audio = np.concatenate([a for a, _, _ in speech])  # about 25 s: many windows
    rate = speech[0][1]
    windowed = engine.track_100hz(audio, rate)
    single = _single_pass(engine, audio, rate)
    assert windowed.shape == single.shape
    assert len(windowed) > 5 * engine.window
    assert np.abs(windowed - single).max() < 1e-4


def test_streaming_in_uneven_chunks_equals_one_call(engine, speech):
    audio, rate, _ = speech[1]
    whole = engine.track_100hz(audio, rate)
    stream = engine.stream(rate)
    rng = np.random.default_rng(3)
    rows, position = [], 0
    while position < len(audio):
        size = int(rng.integers(1, 9000))
        rows.append(stream.push(audio[position : position + size]))
        position += size
    rows.append(stream.finish())
    streamed = np.concatenate(rows)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-5
    # rows arrive while audio is still coming in, not only at the end
    assert sum(len(r) for r in rows[:-1]) > len(whole) // 2


@pytest.mark.parametrize("samples", [0, 1, 100, 8000, 35280 + 17, 22050 * 3 + 5])
def test_any_length_of_audio(engine, speech, samples):
    audio, rate, _ = speech[0]
    piece = np.resize(audio, samples).astype(np.int16)
    for fps in (25, 30):
        track = engine.mouth_track(piece, rate, fps)
        assert track.shape == (math.ceil(samples * fps / rate), 4)
        assert track.dtype == np.float32
        assert np.isfinite(track).all() and (track >= 0).all() and (track <= 1).all()
    if samples >= 8000:  # speech in it: the mouth moves
        assert engine.mouth_track(piece, rate, 30)[:, JAW].max() > 0.3


def test_same_speech_at_another_sample_rate_gives_the_same_mouth(engine, speech):
    audio, rate, _ = speech[0]
    spectrum = np.fft.rfft(audio.astype(np.float64))
    n16 = int(round(len(audio) * 16000 / rate))
    resampled = np.fft.irfft(spectrum[: n16 // 2 + 1], n16) * n16 / len(audio)
    at16 = engine.mouth_track(np.clip(resampled, -32768, 32767).astype(np.int16), 16000, 30)
    at22 = engine.mouth_track(audio, rate, 30)
    frames = min(len(at16), len(at22))
    assert np.corrcoef(at16[:frames, JAW], at22[:frames, JAW])[0, 1] > 0.95


def test_bad_audio_is_a_clear_error(engine):
    with pytest.raises(face.AudioFormatError, match="8000 Hz is below"):
        engine.mouth_track(np.zeros(800, dtype=np.int16), 8000, 30)
    with pytest.raises(face.AudioFormatError, match="mono") as info:
        engine.mouth_track(np.zeros((800, 2), dtype=np.int16), 16000, 30)
    assert info.value.exit_code == ExitCode.USAGE and info.value.code == "bad_audio"
    with pytest.raises(face.AudioFormatError, match="int16 or float"):
        engine.mouth_track(np.zeros(800, dtype=np.int32), 16000, 30)


def test_load_from_config(tmp_path):
    loaded = open_face(tmp_path)
    loaded.warm_up()
    assert loaded.window > 2 * loaded.context
    loaded.close()
    engines = EnginesConfig(dir=ENGINE_DIR.parent, build_dir=tmp_path, backend="onnxruntime", cpu_threads=1)
    with pytest.raises(ConfigError, match="no-such-engine"):
        face.FaceEngine.load(FaceConfig(engine="no-such-engine"), engines)
    with pytest.raises(EngineError, match="face.engine is not set"):
        face.FaceEngine.load(FaceConfig(), engines)


def test_broken_engine_folder_is_a_clear_error(tmp_path):
    broken = tmp_path / "engines" / ENGINE_DIR.name
    broken.mkdir(parents=True)
    good = (ENGINE_DIR / "manifest.toml").read_text()
    (broken / "model.onnx").write_bytes(ONNX.read_bytes())

    def attempt(manifest: str) -> Exception:
        (broken / "manifest.toml").write_text(manifest)
        with pytest.raises((ConfigError, EngineError)) as info:
            open_face(tmp_path / "build", broken)
        return info.value

    error = attempt(good.replace('kind = "face"', 'kind = "tts"'))
    assert isinstance(error, EngineError) and "not \"face\"" in error.message
    error = attempt(good.replace("[metadata]", "[metadata]\nn_mels_unused = \"1\"").replace('n_mels = "40"', 'n_mels = "80"'))
    assert "80 mel bands" in error.message
    error = attempt(good.replace('window_frames = ', 'window_size = '))
    assert isinstance(error, EngineError) and "window_frames" in error.message
    error = attempt(good.replace('memory_mb = ', 'memory = '))
    assert isinstance(error, ConfigError) and "memory_mb: required key is missing" in error.message
    assert error.exit_code == ExitCode.CONFIG
    (broken / "model.onnx").write_bytes(b"this is not an ONNX file")
    error = attempt(good)
    assert isinstance(error, EngineError) and "sha256" in error.message
    error = attempt(good.replace(good.split('sha256 = "')[1][:64], hashlib.sha256(b"this is not an ONNX file").hexdigest()))
    assert isinstance(error, EngineError) and "cannot load" in error.message
    assert error.exit_code == ExitCode.UNAVAILABLE


def test_manifest_names_the_committed_onnx_and_its_hash():
    try:
        import tomllib  # novermin (Python 3.11+; tomli below for 3.10)
    except ModuleNotFoundError:
        import tomli as tomllib
    manifest = tomllib.loads((ENGINE_DIR / "manifest.toml").read_text())
    assert manifest["kind"] == "face"
    assert manifest["sha256"] == hashlib.sha256(ONNX.read_bytes()).hexdigest()
    assert ONNX.stat().st_size < 1_000_000


@pytest.mark.parametrize("source, has_durations, loaded, expected", [
    ("auto", True, True, face.MouthSource.DURATIONS),
    ("auto", False, True, face.MouthSource.ENGINE),
    ("auto", False, False, face.MouthSource.ENVELOPE),
    ("auto", True, False, face.MouthSource.DURATIONS),
    ("engine", True, True, face.MouthSource.ENGINE),
    ("engine", False, True, face.MouthSource.ENGINE),
    ("engine", True, False, face.MouthSource.DURATIONS),
    ("engine", False, False, face.MouthSource.ENVELOPE),
    ("durations", True, True, face.MouthSource.DURATIONS),
    ("durations", False, True, face.MouthSource.ENVELOPE),
])
def test_mouth_source_selection(source, has_durations, loaded, expected):
    assert face.select_mouth_source(FaceConfig(source=source), has_durations, loaded) is expected


def test_envelope_jaw_follows_loudness():
    rate = 16000
    t = np.arange(rate) / rate
    tone = (0.5 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    audio = np.concatenate([np.zeros(rate, np.int16), tone, np.zeros(rate, np.int16)])
    track = face.envelope_track(audio, rate, 25)
    assert track.shape == (75, 4)
    assert np.all(track[:25] == 0)
    assert track[35:50, JAW].min() > 0.6
    assert track[-5:, JAW].max() < 0.05


def test_video_rate_keeps_a_closure_between_frame_centres():
    track = np.zeros((100, 4), dtype=np.float32)
    track[:, JAW] = 0.7
    track[15:18] = (0.02, 1.0, 0.0, 0.0)  # 30 ms closure, 0.15–0.18 s
    video = face.to_video_rate(track, 25, 25)  # centres at 0.14 and 0.18 s: neither inside
    assert (video[:, LIPS] >= 0.99).sum() == 1
    assert video[4, LIPS] >= 0.99 and video[4, JAW] < 0.05


def _runs(mask: np.ndarray) -> int:
    return int(np.sum(mask[1:] & ~mask[:-1]) + (1 if len(mask) and mask[0] else 0))


def test_another_voice_without_durations(engine, tmp_path):
    """Audio the network never trained on: espeak-ng's own voice, as a recorded announcement would be."""
    import shutil
    import subprocess
    import wave

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh)")
    path = tmp_path / "bob.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), "Bob met Pam by the map."], check=True)
    with wave.open(str(path)) as handle:
        rate = handle.getframerate()
        audio = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
    track = engine.mouth_track(audio, rate, 30)
    # five bilabial closures (B-ob, b-m, P-am, m-b, ma-p; m of "map" may merge) and six vowels
    assert _runs(track[:, LIPS] >= 0.5) >= 4
    assert _runs(track[:, JAW] >= 0.4) >= 4
    assert reads_closed(track[-5:]).all()  # espeak-ng's trailing silence
