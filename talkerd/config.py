"""The daemon's configuration: frozen pydantic models read from a TOML file.

Relative paths are resolved against the directory of the config file, so a config and its models can
move together. ``load_config`` turns every problem into a ``ConfigError`` that names the file, the
field and what was expected; ``check_resources`` additionally checks that every file named exists.
"""
from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .errors import ConfigError
from .tomlfile import read_toml, validation_error


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    value = Path(os.path.expandvars(str(value))).expanduser()
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return Path(os.path.normpath(value))


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
"""A filesystem path; relative paths are taken from the config file's directory."""

SUPPORTED_CAPTURE_RATES = (8000, 16000, 32000, 48000)
SUPPORTED_OUTPUT_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class PersonaConfig(Section):
    name: str = Field(min_length=1)
    """The avatar's name, used in its self-introduction and the LLM's system prompt."""
    role: str = Field(default="the information assistant", min_length=1)
    """What the avatar is at the venue, as a phrase ("the welcome assistant")."""
    style: str = Field(default="friendly, warm and brief", min_length=1)
    """How it speaks: a short phrase given to the LLM."""
    greeting: str = ""
    """Spoken once when the daemon is ready, or, with ``conversation.greet``, to open each visitor's
    conversation instead; empty for none."""
    unknown_answer: str = Field(
        default="I'm sorry, I don't know that. Please ask a member of staff.", min_length=1
    )
    """Said for a venue question that the venue knowledge does not answer."""
    apology: str = Field(default="Sorry, I lost my train of thought. Could you ask me again?", min_length=1)
    """Said when the LLM fails or times out."""

    @field_validator("name", "role", "style", "unknown_answer", "apology")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class VenueEntry(Section):
    topic: str = Field(min_length=1)
    """A short name for what the entry answers ("opening hours")."""
    questions: list[str] = Field(min_length=1)
    """Ways visitors ask about it; matched against the visitor's question."""
    answer: str = Field(min_length=1)
    """The curated answer, spoken as written when the match is confident."""
    keywords: list[str] = []
    """Extra words that point at this entry (product names, words visitors use). A keyword of several
    words ("book club") matches only as that phrase."""

    @field_validator("topic", "answer")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("questions", "keywords")
    @classmethod
    def _items_not_blank(cls, value: list[str]) -> list[str]:
        return _no_blank_items(value)


def _no_blank_items(values: list[str]) -> list[str]:
    blank = [i for i, v in enumerate(values) if not v.strip()]
    if blank:
        raise ValueError(f"item {blank[0]} is blank")
    return [v.strip() for v in values]


class VenueConfig(Section):
    name: str = Field(min_length=1)
    """The venue's name."""
    facts: list[str] = []
    """Short fact lines handed to the LLM when a question matches an entry only weakly."""
    entries: list[VenueEntry] = []
    """Curated answers: the venue's frequently asked questions."""
    synonyms: dict[str, list[str]] = {}
    """Word or phrase → words and phrases that mean the same to visitors here ("toilet": ["loo",
    "rest room"]). Inflections (open, opens, opening) need no synonyms."""
    aliases: list[str] = []
    """What visitors call the venue itself ("the shop", its name). Every question is about the venue,
    so these words point at no entry and are left out of matching."""

    @field_validator("facts", "aliases")
    @classmethod
    def _items_not_blank(cls, value: list[str]) -> list[str]:
        return _no_blank_items(value)

    @field_validator("synonyms")
    @classmethod
    def _one_meaning_per_phrase(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        owner: dict[str, str] = {}
        for key, phrases in value.items():
            for phrase in (key, *_no_blank_items(phrases)):
                folded = " ".join(phrase.lower().split())
                if not folded:
                    raise ValueError("a blank word is listed")
                if owner.setdefault(folded, key) != key:
                    raise ValueError(f"{phrase!r} is listed under both {owner[folded]!r} and {key!r}")
        return value


class KnowledgeConfig(Section):
    confident_score: float = Field(default=0.62, gt=0.0, le=1.0)
    """A match at least this good is answered with the curated answer, without the LLM. Above 0.6, a
    question with half or more of its weight in words the knowledge has never seen is never confident."""
    weak_score: float = Field(default=0.40, gt=0.0, le=1.0)
    """A venue match at least this good (but not confident) is handed to the LLM with its facts."""

    @field_validator("weak_score")
    @classmethod
    def _weak_below_confident(cls, value: float, info: ValidationInfo) -> float:
        confident = info.data.get("confident_score")
        if confident is not None and value > confident:
            raise ValueError(f"must not exceed knowledge.confident_score ({confident})")
        return value
    facts_for_llm: int = Field(default=3, ge=1, le=20)
    """How many matched facts and entries the LLM sees for a weak match."""
    venue_cues: list[str] = []
    """Extra words that mark a question as being about the venue (besides the built-in table and the
    entries' topics and keywords), so that it gets the honest "I don't know" rather than chat."""
    max_words: int = Field(default=60, ge=4, le=1000)
    """Only the first this many words of a question are matched (bounds the work on very long input)."""
    ambiguity_margin: float = Field(default=0.06, ge=0.0, le=1.0)
    """A confident entry is answered alone only when it scores at least this much above the best entry
    of another topic on the words or on the meaning; closer than that, both entries are answered
    briefly (the first sentence of each). Only with ``semantic``: the words alone keep their ranking."""
    semantic: bool = False
    """Match by meaning as well as by words: the question and the entries' questions and fact lines as
    sentence embeddings (the ``embedding_engine``); a document scores the better of its lexical score
    and the score of its cosine similarity (``semantic_floor``, ``semantic_confident``)."""
    embedding_engine: str = Field(default="minilm-l6", min_length=1)
    """With ``semantic``: the sentence-embedding engine (a folder under ``engines.dir``)."""
    semantic_floor: float = Field(default=0.4, ge=-1.0, lt=1.0)
    """With ``semantic``: a cosine similarity at or below this counts as no similarity at all (score 0)."""
    semantic_confident: float = Field(default=0.65, gt=-1.0, le=1.0)
    """With ``semantic``: the cosine similarity that scores ``confident_score``; between the floor and
    here the meaning's score rises linearly (and on above it, up to 1)."""

    semantic_veto: float = Field(default=0.3, gt=0.0, le=1.0)
    """With ``semantic``: below this cosine similarity the words' score of a document is scaled down in
    proportion (words that match a text of quite another meaning, like "back" in "at the back of the
    ground floor" for "bring something back", are weak evidence)."""

    @field_validator("semantic_confident")
    @classmethod
    def _confident_above_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("semantic_floor")
        if floor is not None and value <= floor:
            raise ValueError(f"must be above knowledge.semantic_floor ({floor})")
        return value


SAFETY_PLACEHOLDERS = ("emergency_number", "staff_place")
"""The names an emergency answer may fill in: ``{emergency_number}``, ``{staff_place}``."""


class SafetyIntent(Section):
    name: str = Field(min_length=1)
    """A short name for the emergency ("medical"), for the log."""
    examples: list[str] = Field(min_length=1)
    """Ways visitors say it ("chest pain", "someone collapsed"); matched before the venue knowledge."""
    answer: str = Field(min_length=1)
    """Spoken as written, with ``{emergency_number}`` and ``{staff_place}`` filled in."""

    @field_validator("examples")
    @classmethod
    def _items_not_blank(cls, value: list[str]) -> list[str]:
        return _no_blank_items(value)

    @field_validator("answer")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:  # an unpaired brace
            raise ValueError(f"not a valid template: {exc}") from None
        unknown = sorted(names - set(SAFETY_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; expected one of {list(SAFETY_PLACEHOLDERS)}")
        return value.strip()


_CALL_AND_STAFF = "Please call {emergency_number} now, and ask any member of staff to help; you can find staff at {staff_place}."
DEFAULT_SAFETY_INTENTS = (
    SafetyIntent(
        name="medical",
        examples=[
            "chest pain", "chest hurts", "heart attack", "collapsed", "feel faint", "fainted", "passed out", "fell down and", "not moving",
            "can not breathe", "struggling to breathe", "not breathing", "bleeding", "badly hurt", "injured",
            "seizure", "choking", "unconscious", "call an ambulance", "stroke", "allergic reaction",
            "medical emergency",
        ],
        answer="This sounds like a medical emergency. " + _CALL_AND_STAFF + " I can't give medical advice.",
    ),
    SafetyIntent(
        name="fire",
        examples=[
            "there is a fire", "on fire", "see smoke", "smell smoke", "smells of smoke", "something is burning",
            "smell burning", "fire in the", "flames", "smoke coming", "full of smoke", "fire alarm is going off",
        ],
        answer="If there is a fire or smoke, leave the building by the nearest exit and call {emergency_number}. "
               "Tell a member of staff at {staff_place}.",
    ),
    SafetyIntent(
        name="lost child",
        examples=[
            "lost my child", "lost my son", "lost my daughter", "lost my kid", "can not find my child",
            "can not find my son", "can not find my daughter", "can not find my kid", "child is missing",
            "son is missing", "daughter is missing", "kid is missing", "boy is missing", "girl is missing",
            "child is lost", "lost child", "lost little boy",
            "lost little girl", "found a lost child",
        ],
        answer="Please go to a member of staff at {staff_place} right away: they will help you find them and can "
               "alert the whole venue. If you need to, call {emergency_number}.",
    ),
    SafetyIntent(
        name="unsafe",
        examples=[
            "feel unsafe", "do not feel safe", "following me", "followed me", "threatened me",
            "threatening me", "someone attacked me", "harassing me", "i am scared", "i am in danger",
            "has a weapon", "has a knife", "has a gun", "call the police",
        ],
        answer="Your safety comes first. Go to a member of staff at {staff_place}, stay where there are people, "
               "and call {emergency_number} if you are in danger.",
    ),
)
"""Emergencies any venue may meet: a medical emergency, fire or smoke, a lost child, feeling unsafe."""


class SafetyConfig(Section):
    emergency_number: str = Field(default="911", min_length=1)
    """The local emergency telephone number, as it should be said ("911"; "112" in Europe)."""
    staff_place: str = Field(default="the main entrance", min_length=1)
    """Where visitors find staff, as a phrase after "at" ("the information desk")."""
    intents: list[SafetyIntent] = list(DEFAULT_SAFETY_INTENTS)
    """The emergencies recognised before anything else and answered as written, never by the LLM.
    Setting this list replaces the defaults."""
    semantic_score: float = Field(default=0.6, gt=0.0, le=1.0)
    """With a sentence embedder: a question at least this similar to an example is that emergency."""


DEFAULT_BLOCKED_WORDS = ("damn", "shit", "fuck", "bitch", "bastard", "crap", "idiot", "stupid", "moron", "dumb", "shut up")
DEFAULT_BLOCKED_TOPICS = {
    "politics": ["politics", "political", "election", "vote", "voting", "president", "prime minister",
                 "government", "parliament", "democrat", "republican", "senator", "political party"],
}


class GuardConfig(Section):
    enabled: bool = True
    """Check every clause the LLM writes before it is spoken (numbers, times, days, names and places must
    be in the venue knowledge, the persona or the question)."""
    blocked_words: list[str] = list(DEFAULT_BLOCKED_WORDS)
    """Words and phrases the avatar never says (swearing, insults); a clause with one is not spoken."""
    blocked_topics: dict[str, list[str]] = {k: list(v) for k, v in DEFAULT_BLOCKED_TOPICS.items()}
    """Topic → words that mark it (politics, competitors' names); a clause on one is not spoken.
    Setting this table replaces the defaults."""
    instructions_overlap: float = Field(default=0.5, gt=0.0, le=1.0)
    """A clause with at least this share of its word pairs from the system prompt (and some only the
    instructions have) is not spoken: the LLM is reading its instructions out."""

    @field_validator("blocked_words")
    @classmethod
    def _items_not_blank(cls, value: list[str]) -> list[str]:
        return _no_blank_items(value)

    @field_validator("blocked_topics")
    @classmethod
    def _topic_words_not_blank(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {topic: _no_blank_items(words) for topic, words in value.items()}


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
    max_utterance_s: float = Field(default=15.0, gt=1, le=120)
    """An utterance is cut here even without a pause."""


class AsrConfig(Section):
    model: ConfigPath
    """The vosk model directory."""
    renew_after_utterances: int = Field(default=10, ge=0)
    """Replace vosk's recogniser with a fresh one once it has decoded this many utterances and the kiosk
    is quiet (0: never). Its decoding graph's cache grows with every new utterance (+100 MiB in the
    first 20 here) and is only let go with the recogniser."""
    renew_idle_s: float = Field(default=20.0, gt=0, le=3600)
    """Seconds without speech that count as quiet (the renewal takes ~150 ms and makes the next few
    utterances decode slower while the cache fills again, so it waits for a pause between visitors)."""


class LlmConfig(Section):
    model: ConfigPath
    """The GGUF file."""
    n_ctx: int = Field(default=2048, ge=256, le=131072)
    """Context length in tokens; ``memory.policy = "shrink"`` may lower it to fit the budget."""
    n_threads: int = Field(default=2, ge=1, le=64)
    """CPU threads for llama.cpp."""
    n_gpu_layers: int = Field(default=0, ge=-1)
    """Layers offloaded to the GPU (-1: all); 0 on a machine without CUDA."""
    max_answer_tokens: int = Field(default=80, ge=8, le=1024)
    """Cap on the length of one answer."""
    max_sentences: int = Field(default=2, ge=1, le=20)
    """An answer ends after this many sentences (a kiosk answer is heard, not read)."""
    max_speech_s: float = Field(default=10.0, gt=0, le=120)
    """An answer ends at the last sentence end within this many seconds of speech."""
    speech_words_per_s: float = Field(default=3.2, gt=0.5, le=6.0)
    """The voice's speaking rate, to turn ``max_speech_s`` into words. Measured: Piper's en_US
    joe-medium at ``tts.length_scale = 1`` speaks 3.4 words a second, 3.2 with the silences between
    clauses; scale it by 1 / ``length_scale`` for a slower voice."""
    history_tokens: int = Field(default=384, ge=0)
    """Earlier turns kept in the prompt, at most this many tokens."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; 0 is deterministic."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """An answer not finished in this time is cut short with the persona's apology."""
    instructions: str = (
        "Answer in one or two short spoken sentences. Use only the facts given. "
        "If the facts do not answer the question, say you don't know."
    )
    """Fixed instructions after the persona in the system prompt."""


class ConversationConfig(Section):
    idle_end_s: float = Field(default=45.0, gt=0, le=3600)
    """The conversation with the visitor in front of the kiosk ends after this many seconds without
    speech or a typed question; what was said is forgotten, never carried to the next visitor."""
    greet: bool = False
    """Open every new conversation with ``persona.greeting`` (when it is not empty)."""


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


class EnginesConfig(Section):
    dir: ConfigPath
    """Folder of engine definitions (one sub-folder per engine, with manifest.toml)."""
    build_dir: ConfigPath
    """Folder for built TensorRT engines and provisioned ONNX files."""
    backend: Literal["auto", "tensorrt", "onnxruntime"] = "auto"
    """Default runtime: TensorRT where a matching engine loads, else ONNX Runtime."""
    cpu_threads: int = Field(default=2, ge=1, le=64)
    """Intra-op threads for ONNX Runtime."""
    backends: dict[str, Literal["auto", "tensorrt", "onnxruntime"]] = {}
    """Per-engine override of ``backend``, by engine name ("piper-joe-text" = "onnxruntime")."""


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


class MemoryConfig(Section):
    budget_mb: int = Field(default=4096, ge=64)
    """Everything the daemon loads must fit in this many MiB."""
    policy: Literal["refuse", "shrink"] = "refuse"
    """Over budget: refuse to start, or shrink the LLM context until it fits."""


class ControlConfig(Section):
    socket: ConfigPath = Path("${XDG_RUNTIME_DIR}/talkerd/control.sock")
    """The control socket; /run/talkerd/control.sock on a kiosk."""
    group: str | None = None
    """Group that may use the socket (mode 0660); none keeps the process's group."""
    heartbeat_stale_s: float = Field(default=10.0, gt=0, le=300)
    """systemd's watchdog is fed only while every stage has beaten within this many seconds; keep it
    under the unit's ``WatchdogSec`` so a hung stage gets the daemon restarted."""


class MetricsConfig(Section):
    textfile: ConfigPath | None = None
    """Where the Prometheus exposition is written for node_exporter's textfile collector (a file
    ending in .prom, replaced atomically). None writes nothing (development); the kiosk profile uses
    /var/lib/node_exporter/textfile_collector/talkerd.prom."""
    interval_s: float = Field(default=5.0, ge=1.0, le=300.0)
    """Seconds between rewrites of the textfile; node_exporter reads it at each scrape."""


class Config(Section):
    persona: PersonaConfig
    """Who the avatar is."""
    venue: VenueConfig
    """What it knows about the venue."""
    knowledge: KnowledgeConfig = KnowledgeConfig()
    """How questions are matched against the venue knowledge."""
    safety: SafetyConfig = SafetyConfig()
    """Emergencies, answered before anything else."""
    guard: GuardConfig = GuardConfig()
    """What the LLM may say."""
    audio: AudioConfig = AudioConfig()
    """Microphone and speaker."""
    endpointer: EndpointerConfig = EndpointerConfig()
    """Finding where an utterance ends."""
    asr: AsrConfig
    """Speech recognition."""
    llm: LlmConfig
    """The local language model."""
    conversation: ConversationConfig = ConversationConfig()
    """One conversation per visitor."""
    tts: TtsConfig
    """Text to speech."""
    face: FaceConfig = FaceConfig()
    """Mouth shapes."""
    engines: EnginesConfig
    """Inference engines."""
    render: RenderConfig = RenderConfig()
    """The avatar on screen."""
    memory: MemoryConfig = MemoryConfig()
    """The memory budget."""
    control: ControlConfig = ControlConfig()
    """The local control socket."""
    metrics: MetricsConfig = MetricsConfig()
    """Fleet metrics for Prometheus (node_exporter's textfile collector)."""


def parse_config(data: dict, *, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    try:
        return Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise validation_error(exc, source) from None


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a config file; raise ``ConfigError`` naming the file and field on any problem."""
    path = Path(path)
    data = read_toml(path, "config file")
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)


def check_resources(config: Config, *, source: str = "<config>") -> None:
    """Raise ``ConfigError`` naming every field whose file does not exist."""
    from .registry import named_files

    missing = [f"{source}: {field}: no such file: {path}" for field, path in named_files(config).items() if not path.exists()]
    if config.render.avatar == "portrait" and config.render.portrait is None:
        missing.append(f"{source}: render.portrait: required when render.avatar is \"portrait\"")
    if config.knowledge.weak_score > config.knowledge.confident_score:
        missing.append(f"{source}: knowledge.weak_score: must not exceed knowledge.confident_score")
    if missing:
        raise ConfigError("\n".join(missing))
