"""Loading the pipeline's components, each on its own, each allowed to be missing.

A component that cannot load (a missing model file, no device) is reported with a reason and the
daemon carries on without it: no ASR still answers typed questions, no LLM still speaks curated
answers, no TTS still shows answers in status.
"""
from __future__ import annotations

import contextlib
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .errors import TalkerError

log = logging.getLogger(__name__)


class State(str, enum.Enum):
    """The health of a component, device or stage on the board."""

    LOADING = "loading"
    OK = "ok"
    DEGRADED = "degraded"
    """Working, but something failed (a clause the TTS could not speak, an engine on its fallback)."""
    UNAVAILABLE = "unavailable"
    OFF = "off"
    """Not wanted (audio output disabled, typed input only)."""


@dataclass(frozen=True)
class ComponentState:
    state: State
    detail: str = ""


@dataclass
class Components:
    """The loaded parts of the pipeline; a part that did not load is None and its state says why."""

    config: Config
    endpointer: Any = None
    asr: Any = None
    knowledge: Any = None
    dialogue: Any = None
    tts: Any = None
    face: Any = None
    states: dict[str, ComponentState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_state(self, name: str, state: State | str, detail: str = "") -> None:
        state = State(state)  # a state that is not on the board is a bug, caught here
        with self._lock:
            previous = self.states.get(name)
            self.states[name] = ComponentState(state, detail)
        if previous is None or previous.state != state:
            level = logging.WARNING if state in (State.UNAVAILABLE, State.DEGRADED) else logging.INFO
            log.log(level, "%s: %s%s", name, state.value, f" ({detail})" if detail else "", extra={"STAGE": name})

    def snapshot(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {name: {"state": s.state.value, "detail": s.detail} for name, s in self.states.items()}

    def load(self, name: str, loader: Callable[[], Any], *, meter=None) -> Any:
        """Run ``loader``; on a ``TalkerError`` mark the component unavailable and return None."""
        self.set_state(name, "loading")
        try:
            with meter.measure(name) if meter is not None else contextlib.nullcontext():
                part = loader()
        except TalkerError as exc:
            self.set_state(name, "unavailable", exc.message)
            return None
        except Exception as exc:  # a library's own failure (ImportError, OSError, …): report, carry on
            log.exception("%s failed to load", name, extra={"STAGE": name})
            self.set_state(name, "unavailable", f"failed to load: {type(exc).__name__}: {exc}")
            return None
        self.set_state(name, "ok")
        return part


def load_all(config: Config, *, want_asr: bool, meter=None, progress: Callable[[str], None] = lambda name: None) -> Components:
    """Load every component the config asks for, in pipeline order."""
    from .listen.asr import VoskAsr
    from .listen.endpointer import Endpointer, make_detector

    parts = Components(config)
    loaders: list[tuple[str, Callable[[], Any]]] = []
    if want_asr:
        loaders.append(("endpointer", lambda: Endpointer(config.endpointer, make_detector(config.endpointer))))
        loaders.append(("asr", lambda: VoskAsr.load(config.asr, config.audio.capture_rate)))
    else:
        parts.set_state("asr", "off", "no audio input")
    loaders += [
        ("knowledge", lambda: _load_knowledge(config)),
        ("llm", lambda: _load_llm(config)),
        ("tts", lambda: _load_tts(config)),
        ("face", lambda: _load_face(config)),
    ]
    attribute = {"llm": "dialogue"}
    for name, loader in loaders:
        progress(name)
        setattr(parts, attribute.get(name, name), parts.load(name, loader, meter=meter))
    if parts.face is None and parts.states["face"].state is State.OK:
        parts.set_state("face", "off", f"face.source = {config.face.source!r}, no face engine: mouth shapes from TTS durations")
    return parts


def _load_llm(config: Config):
    from .answer.dialogue import Dialogue

    dialogue = Dialogue.load(config.llm, config.persona, config.venue)
    dialogue.warm_up()  # the persona prefix is evaluated now, not during the first visitor's question
    return dialogue


def _load_knowledge(config: Config):
    from .answer.knowledge import VenueKnowledge

    return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer)


def _load_tts(config: Config):
    from .speak.tts import PiperTts

    tts = PiperTts.load(config.tts, config.engines)
    tts.warm_up()
    return tts


def _load_face(config: Config):
    if config.face.source == "durations" or not config.face.engine:
        return None
    from .speak.mouth_engine import FaceEngine

    return FaceEngine.load(config.face, config.engines)


def venue_snapshot(config: Config):
    """The persona and the venue knowledge of ``config``, as the answerer holds them (and a reload swaps)."""
    from .answer.answerer import VenueSnapshot

    return VenueSnapshot(config.persona, config.venue, _load_knowledge(config))


def build_pipeline(parts: Components, source, playout, liveness=None):
    """The pipeline on ``parts``: the one composition shared by the daemon, the benchmark and the soak.
    Each stage takes its own config section here, once."""
    from .answer.answerer import Answerer, VenueSnapshot
    from .listen.listener import Listener
    from .pipeline import Pipeline
    from .speak.speech_maker import SpeechMaker

    config = parts.config
    listener = None
    if parts.endpointer is not None and parts.asr is not None:
        listener = Listener(parts.endpointer, parts.asr, barge_in=config.audio.barge_in)
    snapshot = VenueSnapshot(config.persona, config.venue, parts.knowledge)
    speech = SpeechMaker(parts.tts, parts.face, config.face, playout.clock.sample_rate, config.render.fps)
    return Pipeline(source=source, listener=listener, answerer=Answerer(snapshot, parts.dialogue), speech=speech,
                    playout=playout, health=parts.set_state, liveness=liveness)
