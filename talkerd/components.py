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
import time
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
    since: float = field(default_factory=time.time, compare=False)
    """Wall-clock time the component entered this state (a new detail in the same state keeps it)."""


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
    on_change: Callable[[str, ComponentState], None] = lambda name, state: None
    """Hears every change of state on the board (the daemon publishes it to watchers)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_state(self, name: str, state: State | str, detail: str = "") -> None:
        current = ComponentState(State(state), detail)  # a state that is not on the board is a bug, caught here
        with self._lock:
            previous = self.states.get(name)
            if previous is not None and previous.state == current.state:
                current = ComponentState(current.state, detail, previous.since)
            self.states[name] = current
        state = current.state
        if previous != current:
            self.on_change(name, current)
        if previous is None or previous.state != state:
            level = logging.WARNING if state in (State.UNAVAILABLE, State.DEGRADED) else logging.INFO
            log.log(level, "%s: %s%s", name, state.value, f" ({detail})" if detail else "", extra={"stage": name})

    def snapshot(self) -> dict[str, dict[str, str]]:
        with self._lock:
            states = dict(self.states)
        now = time.time()
        return {name: {"state": s.state.value, "detail": s.detail, "for_s": round(now - s.since, 1)} for name, s in states.items()}

    def engine_board(self) -> dict[str, dict]:
        """Every loaded engine by name: its status (backend, memory, …) and its state on the board."""
        from .registry import COMPONENTS

        board = {}
        for component in COMPONENTS:
            part = getattr(self, component.attribute) if component.attribute else None
            for engine in component.engines(part) if part is not None else ():
                board[engine.name] = {"state": (State.DEGRADED if engine.degraded else State.OK).value, **engine.status()}
        return board

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
            log.exception("%s failed to load", name, extra={"stage": name})
            self.set_state(name, "unavailable", f"failed to load: {type(exc).__name__}: {exc}")
            return None
        self.set_state(name, "ok")
        return part


def load_all(config: Config, *, want_asr: bool, meter=None, progress: Callable[[str], None] = lambda name: None,
             on_change: Callable[[str, ComponentState], None] = lambda name, state: None) -> Components:
    """Load every component the config asks for, in the registry's order (the renderer is the daemon's)."""
    from .registry import COMPONENTS

    parts = Components(config, on_change=on_change)
    for component in COMPONENTS:
        if component.attribute is None or not component.enabled(config):
            continue
        if component.needs_audio and not want_asr:
            parts.set_state(component.name, State.OFF, "no audio input")
            continue
        progress(component.name)
        setattr(parts, component.attribute, parts.load(component.name, lambda: component.load(config), meter=meter))
    if parts.face is None and "face" not in parts.states:
        parts.set_state("face", State.OFF, f"face.source = {config.face.source!r}, no face engine: mouth shapes from TTS durations")
    return parts


def venue_snapshot(config: Config):
    """The persona and the venue knowledge of ``config``, as the answerer holds them (and a reload swaps)."""
    from .answer.answerer import VenueSnapshot

    from .registry import component

    return VenueSnapshot.of(config, component("knowledge").load(config))


def build_pipeline(parts: Components, source, playout, liveness=None, events=None):
    """The pipeline on ``parts``: the one composition shared by the daemon, the benchmark and the soak.
    Each stage takes its own config section here, once."""
    from .answer.answerer import Answerer, VenueSnapshot
    from .answer.conversation import Conversation
    from .events import EventBus
    from .listen.listener import Listener
    from .pipeline import Pipeline
    from .speak.prerendered import SpeechCache
    from .speak.speech_maker import SpeechMaker

    config = parts.config
    listener = None
    if parts.endpointer is not None and parts.asr is not None:
        listener = Listener(parts.endpointer, parts.asr, barge_in=config.audio.barge_in, idle_after_s=config.asr.renew_idle_s)
    snapshot = VenueSnapshot.of(config, parts.knowledge)
    cache = SpeechCache(config.tts.prerender_dir, config.tts.prerender_mb) if config.tts.prerender else None
    speech = SpeechMaker(parts.tts, parts.face, config.face, playout.clock.sample_rate, config.render.fps, cache)
    events = events or EventBus()
    forget = parts.dialogue.reset if parts.dialogue is not None else (lambda: None)
    conversation = Conversation(config.conversation, events, forget=forget)
    answerer = Answerer(snapshot, parts.dialogue, conversation)
    return Pipeline(source=source, listener=listener, answerer=answerer, speech=speech,
                    playout=playout, health=parts.set_state, liveness=liveness, events=events,
                    speculate=config.endpointer.speculate, warm_up_questions=config.asr.warm_up_questions)
