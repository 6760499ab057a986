"""The one list of the daemon's components: for each, when it is wanted, the files it needs, how it is
loaded, how its memory is planned, and how the memory probe drives it to its working peak.

Loading (``components.load_all``), the memory plan (``memory.plan``), the probe (``memory.probe``) and
the file check (``config.check_resources``) all iterate ``COMPONENTS``; a new component is one entry here.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .memory import estimates

log = logging.getLogger(__name__)

PEAK_SENTENCE = " and ".join(["the shop sells new books and old maps"] * 24) + "."
"""One sentence of about 900 phoneme ids, near the text engine's largest input (1024): the TTS's peak."""


@dataclass(frozen=True)
class Component:
    name: str
    """As status, the log, the plan and the meter name it."""
    attribute: str | None
    """The ``components.Components`` field it is loaded into; None for the renderer (the daemon's main
    thread makes it, before anything else)."""
    load: Callable[[Config], Any]
    estimate: Callable[[Config], estimates.Estimate] | None
    """Its planned memory; None for the LLM, which the planner works out per context length."""
    files: Callable[[Config], dict[str, Path]] = lambda config: {}
    """Config field → file or folder that must exist."""
    peak: Callable[[Config, Any], None] = lambda config, part: None
    """Drives the loaded part to the most memory it takes while working (the probe measures that)."""
    enabled: Callable[[Config], bool] = lambda config: True
    needs_audio: bool = False
    """Loaded only when there is audio to listen to."""
    engines: Callable[[Any], tuple] = lambda part: ()
    """The loaded part's inference engines (``talkerd.engines.Engine``), for the health board."""


# -- loaders ------------------------------------------------------------------------------------------
def _renderer(config: Config):
    from .render import make_avatar, open_sink

    avatar = make_avatar(config.render)
    sink, _ = open_sink("window", config.render)
    return avatar, sink


def _endpointer(config: Config):
    from .listen.endpointer import Endpointer, make_detector

    return Endpointer(config.endpointer, make_detector(config.endpointer), _turn_detector(config))


def _turn_detector(config: Config):
    """The end-of-turn model, or None: without it the endpointer still works, by silence alone."""
    from .errors import ConfigError, EngineError
    from .listen.end_of_turn import SmartTurn

    if config.endpointer.end_of_turn != "smart-turn":
        return None
    try:
        turn = SmartTurn.load(config.engines, config.endpointer.turn_engine)
    except (ConfigError, EngineError) as exc:
        log.warning("end of turn by silence only (%d ms): %s", config.endpointer.min_silence_ms, exc.message,
                    extra={"stage": "endpointer"})
        return None
    turn.warm_up()
    return turn


def _asr(config: Config):
    from .listen.asr import VoskAsr

    return VoskAsr.load(config.asr, config.audio.capture_rate)


def _knowledge(config: Config):
    from .answer.knowledge import load_knowledge

    return load_knowledge(config)


def _llm(config: Config):
    from .answer.dialogue import Dialogue

    dialogue = Dialogue.load(config.llm, config.persona, config.venue)
    dialogue.warm_up()  # the persona prefix is evaluated now, not during the first visitor's question
    return dialogue


def _tts(config: Config):
    from .speak.tts import PiperTts

    tts = PiperTts.load(config.tts, config.engines)
    tts.warm_up()
    if config.tts.warm_up_longest:
        _speak_the_longest_sentence(config, tts)
    return tts


def _face(config: Config):
    from .speak.mouth_engine import FaceEngine

    face = FaceEngine.load(config.face, config.engines)
    face.warm_up()  # the first answer's mouth does not pay for the engine's first run
    return face


# -- peaks (the memory probe) --------------------------------------------------------------------------
def _render_a_second(config: Config, part) -> None:
    from .render import RenderLoop, RestSource

    avatar, sink = part
    RenderLoop(avatar, sink, RestSource(), config.render.fps, pace="frames", max_frames=config.render.fps).run(threading.Event())


def _detect_a_second(config: Config, endpointer) -> None:
    from .messages import AudioFrame

    noise = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)
    for start in range(0, len(noise), 320):
        endpointer.feed(AudioFrame(noise[start : start + 320].tobytes(), 16000, 0.0))


def _decode_ten_seconds(config: Config, asr) -> None:
    asr.start()
    rng = np.random.default_rng(0)
    for _ in range(10):
        asr.accept((rng.standard_normal(config.audio.capture_rate) * 3000).astype(np.int16).tobytes())
    asr.finish()


def _speak_the_longest_sentence(config: Config, tts) -> None:
    for _ in tts.synthesize(PEAK_SENTENCE):
        pass


# -- the list -------------------------------------------------------------------------------------------
def _face_wanted(config: Config) -> bool:
    return config.face.source != "durations" and bool(config.face.engine)


def _engine_manifest(config: Config, name: str) -> Path:
    return config.engines.dir / name / "manifest.toml"


COMPONENTS: tuple[Component, ...] = (
    Component("renderer", None, _renderer, estimates.renderer_estimate, peak=_render_a_second,
              files=lambda c: {"render.portrait": c.render.portrait} if c.render.portrait is not None else {}),
    Component("endpointer", "endpointer", _endpointer, estimates.endpointer_estimate, peak=_detect_a_second, needs_audio=True,
              engines=lambda endpointer: endpointer.engines,
              files=lambda c: {"endpointer.vad_model": c.endpointer.vad_model} if c.endpointer.vad_model is not None else {}),
    Component("asr", "asr", _asr, estimates.asr_estimate, peak=_decode_ten_seconds, needs_audio=True,
              files=lambda c: {"asr.model": c.asr.model}),
    Component("knowledge", "knowledge", _knowledge, estimates.knowledge_estimate, engines=lambda k: k.engines,
              files=lambda c: {"knowledge.embedding_engine": _engine_manifest(c, c.knowledge.embedding_engine)}
              if c.knowledge.semantic else {}),
    Component("llm", "dialogue", _llm, None, peak=lambda config, dialogue: dialogue.fill_context(),
              files=lambda c: {"llm.model": c.llm.model}),
    Component("tts", "tts", _tts, lambda c: estimates.engines_estimate("tts", c.engines, [c.tts.text_engine, c.tts.audio_engine]),
              peak=_speak_the_longest_sentence, engines=lambda tts: tts.engines,
              files=lambda c: {"tts.voice_config": c.tts.voice_config, "engines.dir": c.engines.dir,
                               "tts.text_engine": _engine_manifest(c, c.tts.text_engine),
                               "tts.audio_engine": _engine_manifest(c, c.tts.audio_engine)}),
    Component("face", "face", _face, lambda c: estimates.engines_estimate("face", c.engines, [c.face.engine]), enabled=_face_wanted,
              engines=lambda face: face.engines,
              files=lambda c: {"face.engine": _engine_manifest(c, c.face.engine)} if c.face.engine else {}),
)
"""In loading order: the avatar first, then the pipeline's stages in the order of the data path."""

BEFORE_LLM = tuple(c for c in COMPONENTS[: [c.name for c in COMPONENTS].index("llm")])
AFTER_LLM = tuple(c for c in COMPONENTS[len(BEFORE_LLM) + 1 :])


def component(name: str) -> Component:
    return next(c for c in COMPONENTS if c.name == name)


def named_files(config: Config) -> dict[str, Path]:
    """Every file or folder the config names that must exist, by field."""
    files: dict[str, Path] = {}
    for component in COMPONENTS:
        if component.enabled(config):
            files.update(component.files(config))
    return files
