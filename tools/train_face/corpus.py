"""Synthesise the training corpus with the Piper voice: audio, per-phoneme timings and mouth targets.

Each utterance is spoken at a random speaking rate (length_scale 0.8–1.3) with random voice and
duration noise (or none, as the daemon speaks); its sentences are joined with pauses of random length. Piper's alignments (samples per
phoneme, summing exactly to the audio) become ``PhonemeTiming``s and, through ``visemes.mouth_track``
at 100 frames per second, the targets the network learns. The corpus is cached under var/face-train.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkerd.speak import mouth_engine as face, visemes
from talkerd.messages import PhonemeTiming

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One synthesised utterance."""

    text: str
    """What was said."""
    audio: np.ndarray
    """int16 mono samples."""
    sample_rate: int
    """Samples per second (22050 for en_US-joe-medium)."""
    timings: tuple[PhonemeTiming, ...]
    """Every phoneme entry Piper reported, with its time span."""
    length_scale: float
    """The speaking rate it was synthesised at."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def load_voice(model_path: Path, threads: int = 1):
    """The Piper voice with its duration output, on ``threads`` ONNX Runtime threads."""
    import onnxruntime as ort
    from piper import PiperVoice

    voice = PiperVoice.load(str(model_path), include_alignments=True)
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(model_path))
    add_alignment_output(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dataclasses.replace(voice, session=session) if dataclasses.is_dataclass(voice) else voice


def synthesise(voice, text: str, rng: np.random.Generator, plain: bool = False) -> Utterance:
    """Speak ``text`` (sentences joined by 0.1–0.5 s pauses) and collect its phoneme timings.

    A random rate (length_scale 0.8–1.3) and noise (none for 30% of utterances, as the daemon speaks
    by default); ``plain``: exactly as the daemon speaks, rate 1 and no noise."""
    from piper import SynthesisConfig

    def noise(high: float) -> float:
        return 0.0 if plain or rng.random() < 0.3 else float(rng.uniform(0.2, high))

    scale = 1.0 if plain else float(rng.uniform(0.8, 1.3))
    config = SynthesisConfig(length_scale=scale, noise_scale=noise(0.8), noise_w_scale=noise(1.0))
    pieces: list[np.ndarray] = []
    timings: list[PhonemeTiming] = []
    position = 0
    rate = voice.config.sample_rate
    for chunk in voice.synthesize(text, config, include_alignments=True):
        if chunk.phoneme_alignments is None:
            raise RuntimeError(f"Piper gave no alignments for {text!r} (is the onnx package installed?)")
        if pieces:
            gap = np.zeros(int(rng.uniform(0.1, 0.5) * rate), dtype=np.int16)
            pieces.append(gap)
            position += len(gap)
        pairs = [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
        for item in visemes.timings_from_alignments(pairs, rate):
            timings.append(PhonemeTiming(item.phoneme, item.start_s + position / rate, item.duration_s))
        audio = chunk.audio_int16_array
        pieces.append(audio)
        position += len(audio)
    return Utterance(text, np.concatenate(pieces), rate, tuple(timings), scale)


def targets(utterance: Utterance) -> tuple[np.ndarray, np.ndarray]:
    """(mouth targets float32 [frames, 4], p/b/m mask bool [frames]) at the feature rate."""
    frames = face.feature_frames(len(utterance.audio), utterance.sample_rate)
    duration = frames / face.FEATURE_RATE
    track = visemes.mouth_track(utterance.timings, face.FEATURE_RATE, duration)
    mask = visemes.bilabial_frames(utterance.timings, face.FEATURE_RATE, duration)
    return track, mask


@dataclass(frozen=True)
class Example:
    """An utterance prepared for training."""

    power: np.ndarray
    """Mel band powers float32 [N_MELS, frames] (before the logarithm, so gain can be varied)."""
    target: np.ndarray
    """Mouth targets float32 [frames, 4]."""
    bilabial: np.ndarray
    """bool [frames]: inside a p, b or m."""


def prepare(utterance: Utterance) -> Example:
    power = face.band_power(utterance.audio, utterance.sample_rate).astype(np.float32)
    track, mask = targets(utterance)
    return Example(power, track, mask)


def build(voice, texts: list[str], seed: int, cache: Path | None, plain_too: bool = False) -> list[Utterance]:
    """Synthesise every text (cached in ``cache`` as .npz when given); ``plain_too``: each text a
    second time exactly as the daemon speaks it."""
    if cache is not None and cache.exists():
        return _load(cache)
    rng = np.random.default_rng(seed)
    utterances = []
    for i, text in enumerate(texts):
        utterances.append(synthesise(voice, text, rng))
        if plain_too:
            utterances.append(synthesise(voice, text, rng, plain=True))
        if (i + 1) % 100 == 0:
            log.info("synthesised %d of %d utterances", i + 1, len(texts))
    if cache is not None:
        _save(cache, utterances)
    return utterances


def _save(path: Path, utterances: list[Utterance]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, u in enumerate(utterances):
        arrays[f"audio{i}"] = u.audio
        arrays[f"phon{i}"] = np.array([t.phoneme for t in u.timings])
        arrays[f"time{i}"] = np.array([[t.start_s, t.duration_s] for t in u.timings], dtype=np.float64)
    arrays["texts"] = np.array([u.text for u in utterances])
    arrays["meta"] = np.array([[u.sample_rate, u.length_scale] for u in utterances], dtype=np.float64)
    np.savez(path, **arrays)


def _load(path: Path) -> list[Utterance]:
    data = np.load(path)
    result = []
    for i, text in enumerate(data["texts"]):
        timings = tuple(PhonemeTiming(str(p), float(s), float(d)) for p, (s, d) in zip(data[f"phon{i}"], data[f"time{i}"]))
        rate, scale = data["meta"][i]
        result.append(Utterance(str(text), data[f"audio{i}"], int(rate), timings, float(scale)))
    return result
