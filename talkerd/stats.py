"""Latency statistics over recent turns: p50/p95 per trace mark and for time to first audio."""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

from .messages import Mark, Turn, TurnSource

TIME_TO_FIRST_AUDIO = "time_to_first_audio"


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
    }


def time_to_first_audio_ms(turn: Turn) -> float | None:
    """End of the visitor's speech (or the question's arrival) to the answer's first sample out."""
    start = turn.start()
    out = turn.marks.get(Mark.AUDIO_OUT)
    if start is None or out is None:
        return None
    return (out - start) * 1000.0


def answer_time_to_first_audio_ms(turn: Turn) -> float | None:
    """Time to first audio of an answer; None for `say` and `play` (no question to answer) or when the
    turn never reached the speaker."""
    if turn.source not in (TurnSource.VOICE, TurnSource.TYPED):
        return None
    return time_to_first_audio_ms(turn)


class LatencyStats:
    """Keeps the traces of the last ``window`` finished turns."""

    def __init__(self, window: int = 200) -> None:
        self._turns: deque[dict[str, float]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, turn: Turn) -> None:
        latencies = turn.latencies_ms()
        ttfa = answer_time_to_first_audio_ms(turn)
        if ttfa is not None:
            latencies[TIME_TO_FIRST_AUDIO] = round(ttfa, 1)
        with self._lock:
            self._turns.append(latencies)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per mark (ms since the turn's start): n, p50, p95."""
        with self._lock:
            turns = list(self._turns)
        names = [m.value for m in Mark] + [TIME_TO_FIRST_AUDIO]
        return {name: stats for name in names if (stats := percentiles([t[name] for t in turns if name in t]))}
