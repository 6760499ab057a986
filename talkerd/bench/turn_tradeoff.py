"""How the end-of-turn settings trade false cut-offs against waiting, on the endpointer itself.

The black-box run times the daemon's one configuration. This sweeps the settings instead: the real
``Endpointer`` (the config's VAD, and Smart Turn where a row asks for it) hears each question — whole,
and said in two parts with a pause between them — on a simulated clock, as fast as it can. A row is one
setting: how often it ended a paused question in its pause (a false cut-off), by pause length, and how
long after the end of a whole question it declared the end (the wait a visitor hears before anything
else happens).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from ..config import Config, EndpointerConfig
from ..messages import AudioFrame

RATE = 16000
FRAME = RATE * 20 // 1000
TAIL_S = 2.0
"""Silence heard after each question: longer than the longest silence a setting waits for."""


@dataclass(frozen=True)
class Setting:
    end_of_turn: str
    min_silence_ms: int
    turn_threshold: float = 0.5

    @property
    def label(self) -> str:
        if self.end_of_turn == "silence":
            return f"silence {self.min_silence_ms} ms"
        return f"smart-turn ≥ {self.turn_threshold:.1f}, else silence {self.min_silence_ms} ms"


SETTINGS = (
    *(Setting("silence", ms) for ms in (400, 500, 600, 700, 800, 1000)),
    *(Setting("smart-turn", ms, threshold) for ms in (600, 1000) for threshold in (0.3, 0.5, 0.7, 0.9)),
)


def first_end(endpointer, audio: np.ndarray) -> float | None:
    """Seconds into ``audio`` at which a fresh ``endpointer`` first declared an utterance's end."""
    from ..listen.endpointer import EndpointKind

    audio = np.concatenate([audio, np.zeros(int(TAIL_S * RATE), audio.dtype)])
    for index, start in enumerate(range(0, len(audio) - FRAME + 1, FRAME)):
        at = (index + 1) * FRAME / RATE
        event = endpointer.feed(AudioFrame(audio[start : start + FRAME].tobytes(), RATE, at))
        if event is not None and event.kind is EndpointKind.UTTERANCE_END:
            return event.utterance.declared_at
    return None


def _endpointer(config: EndpointerConfig, setting: Setting, detector, turn):
    from ..listen.endpointer import Endpointer

    variant = config.model_copy(update={"end_of_turn": setting.end_of_turn, "min_silence_ms": setting.min_silence_ms,
                                        "turn_threshold": setting.turn_threshold})
    return Endpointer(variant, detector, turn if setting.end_of_turn == "smart-turn" else None)


def sweep(config: Config, plain, paused, settings=SETTINGS) -> list[dict]:
    """One row per setting; ``plain`` and ``paused`` are ``blackbox.Utterance``s."""
    from ..listen.endpointer import make_detector

    detector = make_detector(config.endpointer)
    turn = _smart_turn(config) if any(s.end_of_turn == "smart-turn" for s in settings) else None
    rows = []
    for setting in settings:
        if setting.end_of_turn == "smart-turn" and turn is None:
            continue
        def heard(audio):  # each question on its own: nothing of the one before in the turn model's window
            return first_end(_endpointer(config.endpointer, setting, detector, turn), audio)

        waits = [heard(u.audio) for u in plain]
        cut = {}
        for pause_ms in sorted({u.pause_ms for u in paused}):
            ends = [(heard(u.audio), u.end / RATE) for u in paused if u.pause_ms == pause_ms]
            cut[pause_ms] = sum(at is not None and at < end for at, end in ends) / len(ends)
        declared = [(at - u.end / RATE) * 1000 for at, u in zip(waits, plain) if at is not None]
        rows.append({"setting": setting.label, "false_cut_off_by_pause_ms": cut,
                     "wait_p50_ms": round(statistics.median(declared), 0) if declared else None})
    return rows


def _smart_turn(config: Config):
    from ..errors import ConfigError, EngineError
    from ..listen.end_of_turn import SmartTurn

    try:
        return SmartTurn.load(config.engines, config.endpointer.turn_engine)
    except (ConfigError, EngineError):
        return None


def render_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    pauses = list(rows[0]["false_cut_off_by_pause_ms"])
    head = f"  {'setting':42} " + " ".join(f"{f'cut at {p} ms':>12}" for p in pauses) + f" {'wait p50':>9}"
    lines = [head]
    for row in rows:
        cells = " ".join(f"{row['false_cut_off_by_pause_ms'][p] * 100:11.0f}%" for p in pauses)
        lines.append(f"  {row['setting']:42} {cells} {row['wait_p50_ms']!s:>6} ms")
    return lines
