"""Control params are parsed at the edge: a bad parameter is ``bad_request`` naming the field, and
nothing starts; a recording that cannot be played is ``bad_audio``."""
from __future__ import annotations

import wave

import pytest

from talkerd.control.api import ControlApi
from talkerd.errors import TalkerError
from talkerd.messages import Turn, TurnSource


class RecordingPipeline:
    """Stands for the pipeline (tests/test_pipeline.py runs the real one): records what was started."""

    def __init__(self) -> None:
        self.started: list[tuple[str, object]] = []

    def ask(self, text, source):
        return self._turn("ask", text)

    def say(self, text):
        return self._turn("say", text)

    def play(self, audio, rate, description):
        return self._turn("play", description)

    def _turn(self, method, what):
        self.started.append((method, what))
        turn = Turn(TurnSource.TYPED, question=str(what))
        turn.done.set()
        return turn


class Daemon:
    def __init__(self) -> None:
        self.pipeline = RecordingPipeline()

    def status(self):
        return {"state": "ready"}

    def reload(self):
        pass


@pytest.fixture
def api():
    daemon = Daemon()
    return daemon, ControlApi(daemon).handlers()


@pytest.mark.parametrize("method, params, field", [
    ("ask", {"text": "When do you open?", "timeout": "soon"}, "timeout"),
    ("ask", {"text": "When do you open?", "colour": "red"}, "colour"),
    ("ask", {"text": "   "}, "text"),
    ("ask", {}, "text"),
    ("say", {"text": 42}, "text"),
    ("play", {"path": "x.wav", "wait": "maybe"}, "wait"),
    ("status", {"verbose": True}, "verbose"),
])
def test_a_bad_parameter_is_refused_by_name_and_starts_nothing(api, method, params, field):
    daemon, handlers = api
    with pytest.raises(TalkerError) as refused:
        handlers[method](params)
    assert refused.value.code == "bad_request"
    assert refused.value.message.startswith(f"params.{field}"), refused.value.message
    assert daemon.pipeline.started == []


def test_good_parameters_start_the_turn(api):
    daemon, handlers = api
    reply = handlers["ask"]({"text": "When do you open?", "timeout": 5})
    assert daemon.pipeline.started == [("ask", "When do you open?")] and reply["done"]


def test_a_recording_that_cannot_be_played_is_bad_audio(api, tmp_path):
    daemon, handlers = api
    eight_bit = tmp_path / "announcement.wav"
    with wave.open(str(eight_bit), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    for path in (eight_bit, tmp_path / "missing.wav"):
        with pytest.raises(TalkerError) as refused:
            handlers["play"]({"path": str(path)})
        assert refused.value.code == "bad_audio" and str(path) in refused.value.message
    assert daemon.pipeline.started == []
