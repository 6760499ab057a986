"""Evaluation of an exported face engine on held-out utterances, through the runtime code path.

The engine (ONNX Runtime, one thread, ``FaceEngine.mouth_track``) is compared with the mouth track
that ``visemes.mouth_track`` derives from Piper's phoneme durations, at the video frame rate:
- jaw correlation: Pearson correlation of jaw_open over all frames of all held-out utterances;
- p/b/m closure: of the frames whose centre lies inside a p, b or m, the fraction where the predicted
  mouth reads closed, i.e. lips_closed ≥ 0.5 or jaw_open ≤ 0.15;
- silence: the largest jaw_open predicted for digital silence;
- cost: wall time per second of audio, features and network together.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkerd.speak import visemes
from talkerd.config import EnginesConfig, FaceConfig
from talkerd.engines import load_manifest
from talkerd.speak.mouth_engine import FaceEngine

from .corpus import Utterance

CLOSED_LIPS = 0.5
CLOSED_JAW = 0.15


def reads_closed(track: np.ndarray) -> np.ndarray:
    """bool [frames]: the mouth reads as closed (lips pressed, or jaw nearly shut)."""
    return (track[:, 1] >= CLOSED_LIPS) | (track[:, 0] <= CLOSED_JAW)


@dataclass(frozen=True)
class Evaluation:
    """Figures for docs/face-eval.md."""

    utterances: int
    """Held-out utterances evaluated."""
    audio_s: float
    """Their total duration."""
    fps: int
    """Video frame rate of the comparison."""
    jaw_correlation: float
    """Pearson correlation of jaw_open, all frames pooled."""
    jaw_correlation_median: float
    """Median of the per-utterance correlations."""
    jaw_mae: float
    """Mean absolute jaw_open error."""
    bilabial_frames: int
    """Frames inside p, b or m."""
    bilabial_closed: float
    """Fraction of them where the prediction reads closed."""
    vowel_open: float
    """Fraction of frames whose target jaw_open ≥ 0.5 where the prediction has jaw_open ≥ 0.3."""
    silence_max_jaw: float
    """Largest jaw_open predicted over 2 s of digital silence."""
    ms_per_audio_s: float
    """Wall time per second of audio on ONNX Runtime with one thread (features + network)."""
    model_bytes: int
    """Size of the ONNX file."""


def open_engine_dir(engine_dir: Path, build_dir: Path) -> FaceEngine:
    """The engine folder through the runtime's own loading path, on ONNX Runtime with one thread."""
    engines = EnginesConfig(dir=engine_dir.parent, build_dir=build_dir, backend="onnxruntime", cpu_threads=1)
    return FaceEngine.load(FaceConfig(engine=engine_dir.name), engines)


def evaluate(engine_dir: Path, held_out: list[Utterance], build_dir: Path, fps: int = 30) -> Evaluation:
    onnx_path = engine_dir / load_manifest(engine_dir).onnx
    engine = open_engine_dir(engine_dir, build_dir)
    engine.warm_up()
    predicted, reference, masks, per_utt = [], [], [], []
    elapsed = 0.0
    for u in held_out:
        started = time.perf_counter()
        track = engine.mouth_track(u.audio, u.sample_rate, fps)
        elapsed += time.perf_counter() - started
        ref = visemes.mouth_track(u.timings, fps, u.duration_s)
        predicted.append(track)
        reference.append(ref)
        masks.append(visemes.bilabial_frames(u.timings, fps, u.duration_s))
        per_utt.append(float(np.corrcoef(track[:, 0], ref[:, 0])[0, 1]))
    pred, ref, mask = np.concatenate(predicted), np.concatenate(reference), np.concatenate(masks)
    vowels = ref[:, 0] >= 0.5
    silence = engine.mouth_track(np.zeros(2 * 22050, dtype=np.int16), 22050, fps)
    audio_s = sum(u.duration_s for u in held_out)
    return Evaluation(
        utterances=len(held_out),
        audio_s=audio_s,
        fps=fps,
        jaw_correlation=float(np.corrcoef(pred[:, 0], ref[:, 0])[0, 1]),
        jaw_correlation_median=float(np.median(per_utt)),
        jaw_mae=float(np.abs(pred[:, 0] - ref[:, 0]).mean()),
        bilabial_frames=int(mask.sum()),
        bilabial_closed=float(reads_closed(pred[mask]).mean()),
        vowel_open=float((pred[vowels, 0] >= 0.3).mean()),
        silence_max_jaw=float(silence[:, 0].max()),
        ms_per_audio_s=1000.0 * elapsed / audio_s,
        model_bytes=onnx_path.stat().st_size,
    )
