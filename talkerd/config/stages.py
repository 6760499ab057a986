"""The sections of the pipeline's devices and stages: microphone and speaker, end of turn, speech
recognition, the voice, the face, the avatar on screen."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import ConfigPath, Section

SUPPORTED_CAPTURE_RATES = (8000, 16000, 32000, 48000)
SUPPORTED_OUTPUT_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


class AudioConfig(Section):
    input_device: str = "default"
    """Capture device, chosen by (part of) its PyAudio name."""
    output_device: str = "default"
    """Playback device, chosen by (part of) its PyAudio name."""
    capture_rate: int = 16000
    """Microphone sample rate in Hz (the ASR and voice-activity models want 16000)."""
    frame_ms: Literal[10, 20, 30] = 20
    """Capture frame length in milliseconds."""
    output_buffer_ms: int = Field(default=40, ge=5, le=500)
    """Playback buffer per write; with the device's own latency it sets the audio-to-lip offset."""
    barge_in: bool = False
    """Let a visitor interrupt the avatar by speaking. Needs echo cancellation (PulseAudio's
    module-echo-cancel) so the avatar does not hear itself; when false the microphone is ignored while
    the avatar speaks."""
    reconnect_s: float = Field(default=1.0, gt=0, le=60)
    """Seconds before the first attempt to reopen a lost or missing device; later attempts back off."""
    reconnect_max_s: float = Field(default=2.0, gt=0, le=600)
    """The longest interval between attempts: a device that comes back is in use again within about
    this long. Each attempt may re-initialise PortAudio (never while the speaker is speaking)."""

    @field_validator("capture_rate")
    @classmethod
    def _capture_rate(cls, value: int) -> int:
        if value not in SUPPORTED_CAPTURE_RATES:
            raise ValueError(f"must be one of {SUPPORTED_CAPTURE_RATES} Hz, not {value}")
        return value


class EndpointerConfig(Section):
    vad: Literal["silero", "energy"] = "silero"
    """Voice-activity detector: the Silero ONNX model, or a plain energy threshold."""
    vad_model: ConfigPath | None = None
    """The Silero VAD ONNX file; empty for the one shipped with the silero-vad package."""
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Speech probability above which a frame counts as speech."""
    min_speech_ms: int = Field(default=200, ge=20, le=5000)
    """Voiced time needed before an utterance starts (ignores clicks and coughs)."""
    min_silence_ms: int = Field(default=600, ge=100, le=5000)
    """Silence after speech that ends the utterance whatever the end-of-turn model says (with
    ``end_of_turn = "silence"``, the only rule)."""
    end_of_turn: Literal["smart-turn", "silence"] = "silence"
    """How the end of a turn is told from a pause: the silence alone, or the end-of-turn model at each
    short pause ("smart-turn"; opt-in until its verdicts are measured on people's speech)."""
    turn_engine: str = "smart-turn"
    """The end-of-turn engine (folder under ``engines.dir``)."""
    pause_ms: int = Field(default=200, ge=60, le=2000)
    """Silence after which the end-of-turn model is asked whether the visitor has finished."""
    turn_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """The model's probability at or above which the turn is complete and ends at once."""
    speculate: bool = True
    """At each short pause (``pause_ms``), answer what the visitor has said so far and hold it: it plays
    the moment the turn ends if the final transcript says the same words, and is dropped without a sound
    if the visitor goes on or the final differs. Fixed at start."""
    max_utterance_s: float = Field(default=15.0, gt=1, le=120)
    """An utterance is cut here even without a pause."""


class AsrConfig(Section):
    model: ConfigPath
    """The vosk model directory."""
    renew_after_utterances: int = Field(default=10, ge=0)
    """Replace vosk's recogniser with a fresh one once it has decoded this many utterances and the kiosk
    is quiet (0: never). Its decoding graph's cache grows with every new utterance (+100 MiB in the
    first 20 here) and is only let go with the recogniser."""
    warm_up_questions: int = Field(default=3, ge=0, le=100)
    """Venue questions (the first of each curated entry) said by the kiosk's voice that every fresh
    recogniser decodes in the background before it takes over, at start and at each renewal: a cold
    one decoded its first question at 0.92× real time here, one warmed on 3 at 0.42×, on 10 at 0.35×;
    each costs ~12 MiB of graph cache, counted in the memory plan (0: none)."""
    renew_idle_s: float = Field(default=20.0, gt=0, le=3600)
    """Seconds without speech that count as quiet (the renewal takes ~150 ms and makes the next few
    utterances decode slower while the cache fills again, so it waits for a pause between visitors)."""


class TtsConfig(Section):
    text_engine: str = Field(min_length=1)
    """Engine (folder under ``engines.dir``) that turns phoneme ids into latent frames and durations."""
    audio_engine: str = Field(min_length=1)
    """Engine that turns a fixed-size chunk of latent frames into audio."""
    voice_config: ConfigPath
    """The Piper voice's ``.onnx.json`` (phoneme map, sample rate, espeak voice)."""
    length_scale: float = Field(default=1.0, gt=0.3, lt=3.0)
    """Speaking rate: above 1 is slower."""
    noise_scale: float = Field(default=0.0, ge=0.0, le=1.5)
    """Piper's voice variation; 0 makes speech repeatable."""
    noise_w: float = Field(default=0.0, ge=0.0, le=1.5)
    """Piper's duration variation; 0 makes timing repeatable."""
    sentence_silence_ms: int = Field(default=120, ge=0, le=2000)
    """Silence after each clause."""
    max_leading_silence_ms: int | None = Field(default=40, ge=0, le=2000)
    """The most silence the voice may put before a sentence's first sound (the duration it gives the
    sentence-start marker): the voice sometimes gives it 0.75 s ("This sounds like a medical
    emergency."). None keeps the voice's own durations."""
    chunk_overlap_frames: int = Field(default=24, ge=0, le=64)
    """Latent frames of context on each side of an audio-engine window (256 samples each); the
    decoder sees about ±43 frames, and 24 joins chunks to a relative error under 1e-3."""
    prerender: bool = True
    """Synthesise the fixed answers (curated answers, the unknown answer, the apology, the greeting)
    with their mouth tracks in the background at start and after a reload, so they play at once."""
    prerender_dir: ConfigPath | None = None
    """Where pre-rendered answers are also kept on disk, so a restart loads them instead of
    synthesising again (/var/cache/talkerd/speech on a kiosk); none keeps them in memory only."""
    prerender_mb: float = Field(default=64.0, ge=0, le=4096)
    """The most memory the pre-rendered answers may take (counted in the memory plan); clauses beyond it
    are synthesised when spoken."""
    warm_up_longest: bool = True
    """Warm the voice with its longest sentence before READY, so its engines take all the working memory
    they will ever need at start-up (ONNX Runtime keeps what the longest input needed) instead of growing
    with the first long answers. Costs about 6 s of start-up on a 2-core CPU."""
    normalise: bool = True
    """Say numbers, money, times, dates, ordinals, abbreviations and units as a person reads them
    ("Call 555-0147" → "five five five, zero one four seven", "$50" → "fifty dollars"), so facts can be
    written as printed on a sign; only the voice hears the rewritten text (logs, events and talkerctl
    keep it as written). See ``talkerd.speak.normalise``."""
    date_order: Literal["day_first", "month_first"] = "day_first"
    """How numeric dates are read, and the order dates are said in: "03/12/2026" is "the third of December
    twenty twenty-six" day first, "March twelfth, twenty twenty-six" month first. A date valid only the
    other way round ("12/25/2026") is read that way."""


class FaceConfig(Section):
    source: Literal["auto", "engine", "durations"] = "auto"
    """Where mouth shapes come from: the face engine, the TTS durations, or the best available."""
    engine: str | None = None
    """Name of the face engine folder under ``engines.dir``; none to use durations only."""



class RenderConfig(Section):
    width: int = Field(default=1280, ge=160, le=7680)
    """Frame width in pixels."""
    height: int = Field(default=720, ge=120, le=4320)
    """Frame height in pixels."""
    fps: int = Field(default=30, ge=10, le=60)
    """Frames per second."""
    avatar: Literal["default", "portrait"] = "default"
    """The drawn default avatar, or a portrait image animated by a description file."""
    portrait: ConfigPath | None = None
    """With ``avatar = "portrait"``: the description file (TOML) naming the image and its regions."""
    lip_lead_ms: int = Field(default=30, ge=0, le=200)
    """Show each mouth pose this much before its sound leaves the speaker, to make up for the
    avatar's shape smoothing and the time to draw and show a frame (measured by ``talkerd bench``)."""
    fullscreen: bool = True
    """Fullscreen window on the display."""
    seed: int = 7
    """Seed of the avatar's idle life (when it blinks and glances); kiosks side by side can differ."""
    background: str = "#263446"
    """Background colour behind the default avatar, as #rrggbb."""
    video_path: ConfigPath | None = None
    """Where ``--display auto`` writes the avatar video when there is no display; none for
    ``$XDG_RUNTIME_DIR/talkerd/avatar.mp4`` (or the system's temporary folder)."""
    video_segment_s: float = Field(default=600.0, ge=5.0, le=86400.0)
    """A video file is started afresh after this many seconds (the previous one kept beside it as
    ``*.prev.mp4``), so a kiosk without a display never fills its disk."""

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError(f"must be a colour written #rrggbb, not {value!r}")
        return value.lower()

