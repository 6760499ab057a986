"""The render loop driven by the real audio playout clock, shown in the real window and screenshotted."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from talkerd.config import AudioConfig
from talkerd.messages import EndOfTurn, Mark, SpeechChunk, Turn, TurnSource
from talkerd.mouth import MOUTH_CHANNELS
from talkerd.turns import TurnRegistry
from talkerd.speak.playout import NullOutput, Playout
from talkerd.render import DefaultAvatar, RenderLoop, WindowSink, mouth_opening

from .conftest import piper_speech
from .test_render_window import SIZE, on_screen

pytestmark = [pytest.mark.display, pytest.mark.slow]


class Watching:
    """Asks the playout clock for each frame's pose, and remembers the last answer."""

    def __init__(self, clock) -> None:
        self.clock, self.last = clock, None

    def sample(self):
        self.last = self.clock.sample()
        return self.last


class Screenshots:
    """The window, plus screenshots of a few frames: while a vowel is heard, and in the silence after."""

    def __init__(self, window, grab, avatar, source, turn, stop) -> None:
        self.window, self.grab, self.avatar, self.source, self.turn, self.stop = window, grab, avatar, source, turn, stop
        self.description, self.offline = "screenshots", False
        self.speaking: list[float] = []
        self.silent: list[float] = []

    def show(self, frame) -> None:
        sample = self.source.last
        vowel = sample.speaking and sample.mouth[0] * (1 - sample.mouth[1]) > 0.6 and self.avatar.mouth_drawn[0] > 0.5
        after = self.turn.done.is_set() and not sample.speaking and self.avatar.mouth_drawn.max() < 0.02
        if vowel and len(self.speaking) < 3:
            self.speaking.append(mouth_opening(on_screen(self.window, frame, self.grab, self.avatar.mouth_box), self.avatar.mouth_box))
        elif after and len(self.silent) < 2:
            self.silent.append(mouth_opening(on_screen(self.window, frame, self.grab, self.avatar.mouth_box), self.avatar.mouth_box))
        else:
            self.window.show(frame)
        if len(self.silent) == 2:
            self.stop.set()

    def close(self) -> None:
        pass


def test_window_follows_the_playout_clock_open_while_speaking_closed_after(needs_display, screenshot):
    from talkerd.speak import visemes

    chunk = piper_speech("Papa, are you awake? Mama made a banana pie, and Anna baked a large apple tart.")
    rate, fps = chunk.sample_rate, 30
    audio = chunk.audio_int16_array
    timings = visemes.timings_from_alignments([(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments], rate)
    track = visemes.mouth_track(timings, fps, len(audio) / rate)

    turn = Turn(TurnSource.SAY)
    playout = Playout(NullOutput(rate), rate, AudioConfig(), on_turn_end=TurnRegistry(lambda turn: None).finish)
    stop = threading.Event()
    worker = threading.Thread(target=playout.run, args=(stop,), daemon=True)
    worker.start()
    window = WindowSink(SIZE)
    try:
        avatar = DefaultAvatar(*SIZE)
        # The window is on the screen before the answer starts: the speech plays in real time, and the
        # seconds a busy machine takes to map and paint a new window would otherwise eat into it (one
        # vowel screenshot of the three was left on a fresh clone with a CPU hog beside the suite).
        on_screen(window, avatar.draw(time.monotonic(), np.zeros(len(MOUTH_CHANNELS), np.float32)), screenshot, avatar.mouth_box)
        source = Watching(playout.clock)
        sink = Screenshots(window, screenshot, avatar, source, turn, stop)
        playout.queue.put(SpeechChunk(turn, audio, rate, track, fps, text="…"))
        playout.queue.put(EndOfTurn(turn))
        threading.Timer(30.0, stop.set).start()  # a safety net only: the test stops itself
        RenderLoop(avatar, sink, source, fps).run(stop)
    finally:
        stop.set()
        window.close()
        worker.join(timeout=10)
    assert turn.done.is_set()
    assert len(sink.speaking) >= 2 and min(sink.speaking) > 0.03  # open on vowels, while they are heard
    assert len(sink.silent) == 2 and max(sink.silent) < 0.01  # closed once the answer has ended
    assert Mark.FIRST_LIP_FRAME in turn.marks and turn.marks[Mark.FIRST_LIP_FRAME] >= turn.marks[Mark.AUDIO_OUT]
