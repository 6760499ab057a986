"""Writes the engine manifest and the evaluation page (docs/face-eval.md)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .evaluate import CLOSED_JAW, CLOSED_LIPS, Evaluation

VERSION = "1.1.0"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(engine_dir: Path, onnx_name: str, window: int, context: int, n_mels: int,
                   frame_rate: int) -> Path:
    """manifest.toml for the face engine (talkerd.engines.manifest): one fixed shape, min = opt = max."""
    mel = [1, n_mels, window]
    text = f"""# The face engine: log-mel windows -> mouth shapes (jaw_open, lips_closed, lips_round, lips_wide) at
# {frame_rate} frames/s. The runtime keeps the middle {window - 2 * context} frames of each {window}-frame window;
# {context} frames of context at each edge cover the receptive field, so windows join without seams.
# Only Conv, Relu, Add, Sub, Div, Sigmoid and Transpose. Written by `python -m tools.train_face`:
# MIT-licensed project code, trained on speech of the Piper voice en_US-joe-medium.
name = "{engine_dir.name}"
kind = "face"
version = "{VERSION}"
onnx = "{onnx_name}"
sha256 = "{sha256(engine_dir / onnx_name)}"
precision = "fp16"
frame_rate = {frame_rate}
memory_mb = 12  # measured on ONNX Runtime: 9.5 MiB loaded and warmed up (0.8 MB of weights)

[metadata]
window_frames = "{window}"
context_frames = "{context}"
n_mels = "{n_mels}"
feature_rate = "{frame_rate}"

[[inputs]]
name = "mel"
dtype = "float32"
min = {mel}
opt = {mel}
max = {mel}

[[outputs]]
name = "mouth"
dtype = "float32"
"""
    path = engine_dir / "manifest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_evaluation(path: Path, ev: Evaluation, *, train_utterances: int, train_audio_s: float, steps: int,
                     seed: int, train_s: float, window: int, context: int, parameters: int) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    text = f"""# Face engine evaluation

Written by `python -m tools.train_face` (seed {seed}). From the same synthesised corpus (cached in
var/face-train) a rerun writes a bit-identical ONNX. A corpus synthesised afresh differs slightly,
because Piper's ONNX draws its voice and duration noise from an unseeded generator; the figures then
move in the third decimal. Timings vary with the machine and its load.

## What was trained

- Corpus: {train_utterances} generated utterances ({train_audio_s / 60:.1f} min; templates with word slots,
  numbers, times, prices and punctuation, and sentences of made-up words) spoken by Piper
  en_US-joe-medium at length_scale 0.8–1.3 with random voice and duration noise (none for 30%);
  targets from the phoneme durations through `talkerd.speak.visemes.mouth_track` at 100 frames/s.
- Network: 1-D convolutions (5-wide input, four residual layers dilated 1/2/4/8, 1×1 output, sigmoid),
  {parameters:,} parameters, ONNX {ev.model_bytes / 1024:.0f} KiB. Input `mel` [1, 40, {window}] (log-mel,
  10 ms frames), output `mouth` [1, {window}, 4]; the runtime keeps the middle {window - 2 * context} frames
  of each window and overlaps {context} frames of context at each edge (the receptive field is ±32).
- Training: {steps} steps of 32 random 2 s crops, gain −24…+3 dB and a faint noise floor on half of
  them; {train_s / 60:.1f} min on one CPU thread.

## Held-out results

{ev.utterances} held-out utterances ({ev.audio_s:.0f} s of audio): the {ev.utterances // 2} ordinary sentences of
`tools/train_face/sentences.py:HELD_OUT`, written for the evaluation and made from none of the training
templates, each spoken twice — at a random rate and noise, and exactly as the daemon
speaks (length_scale 1, no noise). Compared at {ev.fps} frames/s with the mouth track derived from
Piper's durations.

| figure | value | target |
|---|---|---|
| jaw_open correlation (all frames) | {ev.jaw_correlation:.3f} | ≥ 0.8, {verdict(ev.jaw_correlation >= 0.8)} |
| jaw_open correlation (median per utterance) | {ev.jaw_correlation_median:.3f} | |
| jaw_open mean absolute error | {ev.jaw_mae:.3f} | |
| p/b/m frames reading closed | {100 * ev.bilabial_closed:.1f}% of {ev.bilabial_frames} | ≥ 90%, {verdict(ev.bilabial_closed >= 0.9)} |
| open-vowel frames (target jaw ≥ 0.5) with jaw ≥ 0.3 | {100 * ev.vowel_open:.1f}% | |
| largest jaw_open in 2 s of silence | {ev.silence_max_jaw:.3f} | |
| cost per second of audio (ONNX Runtime, 1 thread, this CPU) | {ev.ms_per_audio_s:.1f} ms | |

"Closed" means lips_closed ≥ {CLOSED_LIPS} or jaw_open ≤ {CLOSED_JAW}. The p/b/m frames are the video
frames whose centre lies inside a p, b or m after folding stress and length marks
(`talkerd.speak.visemes.bilabial_frames`).
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
