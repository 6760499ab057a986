"""The black-box benchmark's instrument: a mouth at the kiosk's microphone and an ear at its speaker.

``Ear`` speaks into the private PulseAudio microphone in real time (``MicrophoneFeeder``) and records the
private speaker's monitor (``SpeakerRecorder``), both on the monotonic clock. It knows, for every sample
it spoke, when that sample went into the microphone, and it finds the first audible sample the speaker
played after a moment. Nothing here knows what is behind the devices: the daemon, the sequential
baseline or a known-delay echo (the calibration) are measured the same way.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..audio import loud_blocks
from .private_pulse import RATE, MicrophoneFeeder, PrivatePulse, SpeakerRecorder

WINDOW = RATE // 100
"""The speaker is judged in 10 ms windows."""
AUDIBLE_DBFS = -45.0
"""A window louder than this is sound (the null speaker is exact zeros when nothing plays)."""
KEEP_S = 120.0
"""Recorded audio older than this is let go."""


@dataclass(frozen=True)
class Spoken:
    """When one piece of speech went into the microphone."""

    last_written_at: float
    """Monotonic time the feeder wrote its last block (that block's last sample is "now" then)."""
    padded_samples: int
    """Its length in whole feeder blocks."""

    def time_of(self, index: int) -> float:
        """When sample ``index`` of the piece was spoken."""
        return self.last_written_at - (self.padded_samples - index) / RATE


def first_loud_window(samples: np.ndarray, threshold_dbfs: float = AUDIBLE_DBFS) -> int | None:
    """Index of the first 10 ms window of ``samples`` (int16) louder than the threshold, or None."""
    loud = loud_blocks(samples, WINDOW, threshold_dbfs)
    return int(loud[0]) * WINDOW if len(loud) else None


def first_sound(blocks: list[tuple[float, np.ndarray]], after: float, rate: int = RATE) -> float | None:
    """When the first audible sample after ``after`` was heard; ``blocks`` are (time of the block's last
    sample, samples) in order, as ``SpeakerRecorder`` keeps them."""
    pieces = [(end - (len(samples) - 1) / rate, samples) for end, samples in blocks if end >= after]
    if not pieces:
        return None
    start = pieces[0][0]
    audio = np.concatenate([samples for _, samples in pieces])
    skip = max(0, int(math.ceil((after - start) * rate)))
    found = first_loud_window(audio[skip:])
    return None if found is None else start + (skip + found) / rate


class Ear:
    """Speaks into ``pulse``'s microphone and listens to its speaker; ``start()`` before, ``stop()`` after."""

    def __init__(self, pulse: PrivatePulse) -> None:
        self.feeder = MicrophoneFeeder(pulse.fifo)
        self.recorder = SpeakerRecorder(pulse.env)
        self.recorder.recording = True

    def start(self) -> Ear:
        self.feeder.start()
        self.recorder.start()
        return self

    def stop(self) -> None:
        self.feeder.stop()
        self.recorder.stop()

    def speak(self, audio: np.ndarray, timeout_s: float = 60.0) -> Spoken:
        """Say ``audio`` (16 kHz int16) in real time; returns once it has all gone into the microphone."""
        done_before = len(self.feeder.finished_at)
        self.feeder.speak(audio)
        deadline = time.monotonic() + len(audio) / RATE + timeout_s
        while len(self.feeder.finished_at) == done_before:
            if time.monotonic() > deadline:
                raise TimeoutError("the microphone feeder did not finish speaking")
            time.sleep(0.01)
        block = self.feeder.frame
        return Spoken(self.feeder.finished_at[done_before], -(-len(audio) // block) * block)

    def first_sound_after(self, moment: float, timeout_s: float) -> float | None:
        """Waits up to ``timeout_s`` after ``moment`` for the speaker to play something audible.

        Each look reads only what arrived since the last one (and two blocks before it, so a window cut
        at the edge is read whole): the instrument must not take the CPU from what it is timing."""
        after = moment
        while True:
            blocks = self._blocks_after(after)
            found = first_sound(blocks, after)
            if found is not None or time.monotonic() > moment + timeout_s:
                return found
            if blocks:
                after = max(after, blocks[-1][0] - 2 * len(blocks[-1][1]) / RATE)
            time.sleep(0.02)

    def _blocks_after(self, moment: float) -> list[tuple[float, np.ndarray]]:
        recent = []
        for block in reversed(list(self.recorder.blocks)):
            if block[0] < moment:
                break
            recent.append(block)
        return recent[::-1]

    def wait_quiet(self, quiet_s: float, timeout_s: float = 90.0) -> bool:
        """Until the speaker has played nothing audible for ``quiet_s``; False if it never went quiet."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now - self._last_sound(now - quiet_s - 1.0) >= quiet_s:
                self._forget(now - KEEP_S)
                return True
            time.sleep(0.1)
        return False

    def _last_sound(self, since: float) -> float:
        """Time of the last audible 10 ms window heard after ``since`` (``since`` if none)."""
        last = since
        for end, samples in self._blocks_after(since):
            if first_loud_window(samples) is not None:
                last = end
        return last

    def _forget(self, before: float) -> None:
        blocks = self.recorder.blocks
        while blocks and blocks[0][0] < before:
            blocks.pop(0)
