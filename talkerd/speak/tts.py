"""Streaming Piper text-to-speech on the split voice engines.

A clause is phonemized (``talkerd.speak.phonemes``), the **text engine** turns each sentence's phoneme ids
into per-phoneme latent statistics and durations in one run, numpy expands the statistics by the
durations (``np.repeat``: exactly what the full model's alignment matrix does), and the **audio
engine** turns fixed windows of latent frames into audio. Windows overlap by
``tts.chunk_overlap_frames`` on each side because the decoder looks about ±43 frames around each
frame; only each window's inner part is kept, so the joined audio equals the single model's (relative
error ~1e-4) while the first chunk of a long sentence leaves after one window instead of the whole
sentence.

A window that reaches the start or end of the sentence is placed flush with it, so the edges see the
same zero padding as in the full model; only a sentence shorter than a window is padded with masked
frames.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import EnginesConfig, TtsConfig
from ..errors import ComponentUnavailable, ConfigError
from ..messages import PhonemeTiming
from .normalise import Reading, normalise
from .phonemes import PAD, Phonemizer, Sentence, timings

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = 256
"""Audio samples per latent frame (the decoder's total upsampling)."""
LATENT_CHANNELS = 192
INT16_PEAK = 32767


@dataclass(frozen=True)
class TtsChunk:
    """A piece of a clause's audio, ready for playout as soon as it is yielded."""

    audio: np.ndarray
    """int16 mono samples."""
    sample_rate: int
    """Samples per second of ``audio``."""
    phonemes: tuple[PhonemeTiming, ...]
    """The phonemes overlapping this chunk, with times relative to the start of the clause's audio."""
    offset_s: float
    """Where this chunk starts within the clause's audio, in seconds."""
    last: bool
    """The clause's final chunk (it carries the sentence silence)."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class Window:
    """One run of the audio engine: frames [start, end) are kept from the window at ``window_start``."""

    start: int
    """First latent frame this chunk contributes."""
    end: int
    """One past the last latent frame it contributes."""
    window_start: int
    """The latent frame at the window's first position (frames beyond the sentence are masked)."""


def shorten_lead(frames_per_id: np.ndarray, lead_ids: int, most: int) -> np.ndarray:
    """The frames of each id, with the first ``lead_ids`` (the sentence-start marker and its pad) given
    at most ``most`` frames in all, taken from the front."""
    frames = frames_per_id.copy()
    excess = int(frames[:lead_ids].sum()) - most
    for index in range(lead_ids):
        if excess <= 0:
            break
        cut = min(excess, int(frames[index]))
        frames[index] -= cut
        excess -= cut
    return frames


def plan_windows(frames: int, window: int, overlap: int) -> list[Window]:
    """Cover ``frames`` latent frames with windows of ``window`` frames, each keeping ``overlap``
    frames of context on both sides except where it is flush with the sentence's start or end."""
    if window <= 2 * overlap:
        raise ValueError(f"a window of {window} frames leaves nothing between two overlaps of {overlap}")
    plans: list[Window] = []
    start = 0
    while start < frames:
        window_start = max(0, min(start - overlap, frames - window))
        end = frames if window_start + window >= frames else window_start + window - overlap
        plans.append(Window(start, end, window_start))
        start = end
    return plans


@dataclass(frozen=True)
class Voice:
    """What the TTS needs from a Piper voice's ``.onnx.json``."""

    sample_rate: int
    """Output sample rate in Hz."""
    espeak_voice: str
    """The espeak-ng voice that phonemizes for it."""
    id_map: dict[str, tuple[int, ...]]
    """Phoneme → input ids."""

    @classmethod
    def load(cls, path: Path) -> "Voice":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                sample_rate=int(data["audio"]["sample_rate"]),
                espeak_voice=str(data["espeak"]["voice"]),
                id_map={str(k): tuple(int(i) for i in v) for k, v in data["phoneme_id_map"].items()},
            )
        except FileNotFoundError:
            raise ConfigError(f"tts.voice_config: no such file: {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"tts.voice_config: {path} is not a Piper voice config: {exc!r}") from None


def _engine_limits(engines_cfg: EnginesConfig, tts_cfg: TtsConfig) -> tuple[int, int]:
    """The audio engine's fixed window (frames) and the most phoneme ids the text engine accepts,
    from their manifests."""
    from ..engines import load_manifest

    audio = load_manifest(engines_cfg.dir / tts_cfg.audio_engine).input("z_p")
    if not audio.fixed:
        raise ComponentUnavailable(f"engine {tts_cfg.audio_engine}: input z_p must have one fixed shape, "
                                   f"has min {list(audio.min)} and max {list(audio.max)}")
    text = load_manifest(engines_cfg.dir / tts_cfg.text_engine).input("input")
    return int(audio.opt[-1]), int(text.max[-1])


class PiperTts:
    """The streaming TTS: ``synthesize`` yields audio chunks of a clause as they are ready."""

    def __init__(self, text_engine, audio_engine, voice: Voice, cfg: TtsConfig, window: int, *,
                 max_ids: int | None = None, rng: np.random.Generator | None = None) -> None:
        self._text = text_engine
        self._audio = audio_engine
        self.voice = voice
        self.cfg = cfg
        self.window = window
        self.overlap = cfg.chunk_overlap_frames
        if window <= 2 * self.overlap:
            raise ConfigError(f"tts.chunk_overlap_frames: {self.overlap} frames on each side leave nothing of "
                              f"the audio engine's {window}-frame window; use less than {(window + 1) // 2}")
        self.sample_rate = voice.sample_rate
        self.seconds_per_frame = SAMPLES_PER_FRAME / voice.sample_rate
        self._phonemizer = Phonemizer(voice.espeak_voice, voice.id_map, max_ids=max_ids)
        self._reading = Reading(day_first=cfg.date_order == "day_first") if cfg.normalise else None
        """How printed text is read aloud; None to give the phonemizer the text as it is."""
        self._rng = rng if rng is not None else np.random.default_rng()
        self.audio_runs = 0
        """How many times the audio engine has run (for tests and benchmarks)."""

    @classmethod
    def load(cls, tts_cfg: TtsConfig, engines_cfg: EnginesConfig, backend: str | None = None) -> "PiperTts":
        """Open both engines through the engine runtime (TensorRT or ONNX Runtime per the config)."""
        from ..engines import open_engine

        voice = Voice.load(tts_cfg.voice_config)
        window, max_ids = _engine_limits(engines_cfg, tts_cfg)
        opened = []
        try:
            opened.append(open_engine(engines_cfg, tts_cfg.text_engine, backend))
            opened.append(open_engine(engines_cfg, tts_cfg.audio_engine, backend))
            tts = cls(opened[0], opened[1], voice, tts_cfg, window, max_ids=max_ids)
        except BaseException:
            for engine in opened:
                engine.close()
            raise
        log.info("TTS ready: %s + %s, %d Hz, windows of %d frames with %d frames of overlap",
                 tts_cfg.text_engine, tts_cfg.audio_engine, voice.sample_rate, window, tts_cfg.chunk_overlap_frames)
        return tts

    def warm_up(self) -> None:
        """Run both engines once so the first clause does not pay for lazy initialisation."""
        for _ in self.synthesize("Hello."):
            pass

    @property
    def engines(self) -> tuple:
        """The text and audio engines, for the health board."""
        return (self._text, self._audio)

    def close(self) -> None:
        self._text.close()
        self._audio.close()

    # --- one sentence ----------------------------------------------------------------------------

    def _durations(self, sentence: Sentence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """m_p, logs_p [1,192,N] and the frames of each phoneme id [N], from one text-engine run."""
        n = len(sentence.ids)
        if self.cfg.noise_w > 0:
            dp_noise = self._rng.standard_normal((1, 2, n)).astype(np.float32)
        else:
            dp_noise = np.zeros((1, 2, n), np.float32)
        out = self._text.run({
            "input": np.array([sentence.ids], dtype=np.int64),
            "input_lengths": np.array([n], dtype=np.int64),
            "scales": np.array([self.cfg.noise_scale, self.cfg.length_scale, self.cfg.noise_w], dtype=np.float32),
            "dp_noise": dp_noise,
        })
        frames = out["w_ceil"].reshape(-1).astype(np.int64)
        if self.cfg.max_leading_silence_ms is not None:
            most = int(self.cfg.max_leading_silence_ms / 1000.0 / self.seconds_per_frame)
            frames = shorten_lead(frames, sentence.groups[0][1], most)
        return out["m_p"], out["logs_p"], frames

    def _latents(self, m_p: np.ndarray, logs_p: np.ndarray, frames_per_id: np.ndarray) -> np.ndarray:
        """The latent frames z_p [1,192,T]: each phoneme's statistics repeated for its frames."""
        mean = np.repeat(m_p, frames_per_id, axis=2)
        if self.cfg.noise_scale <= 0:
            return mean
        spread = np.exp(np.repeat(logs_p, frames_per_id, axis=2))
        noise = self._rng.standard_normal(mean.shape).astype(np.float32)
        return (mean + noise * spread * np.float32(self.cfg.noise_scale)).astype(np.float32)

    def _audio_chunks(self, z_p: np.ndarray, cancelled: Callable[[], bool]) -> Iterator[np.ndarray]:
        """Float audio of each window's kept frames, in order; stops early when cancelled."""
        frames = z_p.shape[2]
        for plan in plan_windows(frames, self.window, self.overlap):
            if cancelled():
                return
            z = np.zeros((1, LATENT_CHANNELS, self.window), np.float32)
            mask = np.zeros((1, 1, self.window), np.float32)
            valid = min(self.window, frames - plan.window_start)
            z[:, :, :valid] = z_p[:, :, plan.window_start : plan.window_start + valid]
            mask[:, :, :valid] = 1.0
            audio = self._audio.run({"z_p": z, "y_mask": mask})["audio"].reshape(-1)
            self.audio_runs += 1
            first = (plan.start - plan.window_start) * SAMPLES_PER_FRAME
            yield audio[first : first + (plan.end - plan.start) * SAMPLES_PER_FRAME]

    def _silence_samples(self) -> int:
        return int(round(self.cfg.sentence_silence_ms * self.sample_rate / 1000.0))

    def _sentence_timing(self, sentence: Sentence, frames_per_id: np.ndarray, start_s: float) -> list[PhonemeTiming]:
        timed = timings(sentence, frames_per_id, self.seconds_per_frame, start_s)
        silence = self._silence_samples()
        if silence:
            end = timed[-1].start_s + timed[-1].duration_s
            timed.append(PhonemeTiming(PAD, end, silence / self.sample_rate))
        return timed

    def sentences(self, text: str) -> list[Sentence]:
        """The phoneme ids the voice gets for a clause: the text as a person reads it (when
        ``tts.normalise`` is on), phonemized. The one place text enters the voice."""
        spoken = normalise(text, self._reading) if self._reading is not None else text
        return self._phonemizer.sentences(spoken)

    # --- public ------------------------------------------------------------------------------------

    def phonemes_for(self, text: str) -> tuple[PhonemeTiming, ...]:
        """The clause's timed phonemes, as ``synthesize`` would speak them (runs the text engine only;
        repeatable when ``noise_w`` is 0)."""
        result: list[PhonemeTiming] = []
        start = 0.0
        for sentence in self.sentences(text):
            _, _, frames_per_id = self._durations(sentence)
            timed = self._sentence_timing(sentence, frames_per_id, start)
            result.extend(timed)
            start = timed[-1].start_s + timed[-1].duration_s
        return tuple(result)

    def synthesize(self, text: str, *, cancelled: Callable[[], bool] = lambda: False) -> Iterator[TtsChunk]:
        """Speak a clause: yields each audio chunk as soon as it is computed. An empty text yields
        nothing; a cancelled clause stops before the next engine run."""
        sentences = self.sentences(text)
        offset = 0  # samples since the clause's start
        for index, sentence in enumerate(sentences):
            if cancelled():
                return
            m_p, logs_p, frames_per_id = self._durations(sentence)
            timed = self._sentence_timing(sentence, frames_per_id, offset / self.sample_rate)
            count = len(plan_windows(int(frames_per_id.sum()), self.window, self.overlap))
            latents = self._latents(m_p, logs_p, frames_per_id)
            for number, audio in enumerate(self._audio_chunks(latents, cancelled)):
                samples = np.clip(audio * INT16_PEAK, -INT16_PEAK, INT16_PEAK).astype(np.int16)
                sentence_end = number == count - 1
                if sentence_end:
                    samples = np.concatenate([samples, np.zeros(self._silence_samples(), np.int16)])
                yield self._chunk(samples, offset, timed, last=sentence_end and index == len(sentences) - 1)
                offset += len(samples)

    def _chunk(self, samples: np.ndarray, offset: int, timed: list[PhonemeTiming], *, last: bool) -> TtsChunk:
        begin = offset / self.sample_rate
        end = (offset + len(samples)) / self.sample_rate
        overlapping = tuple(p for p in timed if p.start_s < end and p.start_s + p.duration_s > begin)
        return TtsChunk(samples, self.sample_rate, overlapping, begin, last)
