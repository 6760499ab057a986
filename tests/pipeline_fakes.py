"""The pipeline on fakes, for the in-process tests: one small fake per seam, each standing for a real
component that has its own tests (vosk, the venue knowledge, llama.cpp, the Piper engines, the speaker,
the microphone), and ``Harness``, the real ``Pipeline`` built on them."""
from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from talkerd.answer.answerer import Answerer, VenueSnapshot
from talkerd.config import AudioConfig, FaceConfig, PersonaConfig
from talkerd.listen.endpointer import EndpointEvent, EndpointKind
from talkerd.answer.knowledge.matcher import Match, MatchKind
from talkerd.listen.listener import Listener
from talkerd.messages import AudioFrame, Turn, Utterance
from talkerd.pipeline import Pipeline
from talkerd.speak.playout import Playout
from talkerd.speak.prerendered import SpeechCache
from talkerd.speak.speech_maker import SpeechMaker

RATE = 8000
WAIT_S = 20.0


class FakeKnowledge:
    """Stands for ``VenueKnowledge``: questions starting with "where" are curated, "facts …" go to the LLM."""

    def __init__(self, curated: str = "The toilets are on the left.") -> None:
        self.curated = curated

    def match(self, question: str) -> Match:
        if question.lower().startswith("where"):
            return Match(MatchKind.CURATED, 0.9, self.curated, (), "toilets")
        if question.lower().startswith("facts"):
            return Match(MatchKind.FACTS, 0.5, None, ("We open at 9.",), None)
        return Match(MatchKind.SMALLTALK, 0.0, None, (), None)


class FakeDialogue:
    """Stands for llama.cpp's ``Dialogue``: streams a scripted answer word by word, slowly on demand, or fails."""

    def __init__(self, answer: str = "Hello there. I am fine, thank you.", delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.text, self.delay_s, self.error = answer, delay_s, error
        self.questions: list[str] = []
        self.last_stats = None

    def answer(self, question, facts=(), *, cancelled=lambda: False, record=True):
        self.questions.append(question)
        if self.error is not None:
            raise self.error
        for word in self.text.split(" "):
            if cancelled():
                return
            time.sleep(self.delay_s)
            yield word + " "

    def set_persona(self, persona, venue) -> None:
        pass


class FakeTts:
    """Stands for the Piper engines: 10 ms of tone per character in two chunks; a clause with "FAIL" raises."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text, *, cancelled=lambda: False):
        if "FAIL" in text:
            raise RuntimeError("the TTS engine failed")
        self.spoken.append(text)
        audio = (3000 * np.sin(np.arange(len(text) * RATE // 100) / 3)).astype(np.int16)
        half = len(audio) // 2
        for offset, piece in ((0, audio[:half]), (half, audio[half:])):
            yield type("Piece", (), {"audio": piece, "sample_rate": RATE, "phonemes": (), "offset_s": offset / RATE})()


class FastSpeaker:
    """Stands for the speaker: takes audio 50 times faster than real time and keeps what it was given."""

    description, latency_s, audible = "fake speaker", 0.0, True

    def __init__(self) -> None:
        self.samples = 0
        self.unplugged = False

    def unplug(self) -> None:
        """From now on writing fails as PyAudio's does when the device is pulled."""
        self.unplugged = True

    def write(self, samples) -> None:
        if self.unplugged:
            raise OSError(-9999, "Unanticipated host error")
        self.samples += int(np.count_nonzero(samples))
        time.sleep(len(samples) / RATE / 50)

    def speaking(self, busy: bool) -> None:
        pass

    def close(self) -> None:
        pass


class FakeEndpointer:
    """Stands for Silero + the endpointer: a frame of b"S…" starts speech, b"E…" ends the utterance,
    b"P…" is a short pause inside it and b"R…" speech resumed after one."""

    in_speech = False

    def feed(self, frame):
        tag = frame.pcm[:1]
        if tag == b"S" and not self.in_speech:
            self.in_speech = True
            return EndpointEvent(EndpointKind.SPEECH_START)
        if tag in (b"P", b"R") and self.in_speech:
            return EndpointEvent(EndpointKind.PAUSE if tag == b"P" else EndpointKind.RESUMED)
        if tag == b"E" and self.in_speech:
            self.in_speech = False
            return EndpointEvent(EndpointKind.UTTERANCE_END, Utterance(0.0, frame.captured_at, frame.captured_at))
        return None

    def reset(self) -> None:
        self.in_speech = False


class FakeRecogniser:
    """Stands for vosk: recognises whatever the test set as ``text``; its partial transcript is ``partial``."""

    text = "where are the toilets"
    partial: str | None = None

    def start(self) -> None:
        pass

    def accept(self, pcm):
        return self.partial

    def finish(self):
        return type("Recognition", (), {"text": self.text})()

    def idle(self) -> None:
        self.idle_calls = getattr(self, "idle_calls", 0) + 1

    def abandon(self) -> None:
        pass

    def warm_up(self, audio, sample_rate: int) -> None:
        self.warmed_on = getattr(self, "warmed_on", []) + [(tuple(audio), sample_rate)]

    def close(self) -> None:
        pass


class ScriptedMic:
    """Stands for the microphone: yields the frames the test puts in ``frames`` (and a silent one meanwhile)."""

    description, has_audio = "fake mic", True

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes] = queue.Queue()

    def frames(self, stop):
        while not stop.is_set():
            try:
                pcm = self.queue.get(timeout=0.01)
            except queue.Empty:
                pcm = b"\0" * 320
            yield AudioFrame(pcm, 16000, time.monotonic())

    def speak(self, tag: bytes) -> None:
        self.queue.put(tag + b"\0" * 319)


class Harness:
    def __init__(self, *, dialogue=None, barge_in=False, mic=False, speculate=True, venue=None, warm_up_questions=0,
                 prerender=False) -> None:
        self.dialogue = dialogue if dialogue is not None else FakeDialogue()
        self.tts, self.speaker, self.health = FakeTts(), FastSpeaker(), []
        self.mic = ScriptedMic() if mic else None
        self.recogniser = FakeRecogniser()
        persona = PersonaConfig(name="Ava", unknown_answer="I don't know, please ask staff.", apology="Sorry, I lost my words.", greeting="")
        answerer = Answerer(VenueSnapshot(persona, venue, FakeKnowledge()), self.dialogue)
        listener = Listener(FakeEndpointer(), self.recogniser, barge_in=barge_in) if mic else None
        playout = Playout(self.speaker, RATE, AudioConfig(output_buffer_ms=20))
        speech = SpeechMaker(self.tts, None, FaceConfig(), RATE, 30, SpeechCache(None, 64.0) if prerender else None)
        source = self.mic or type("Silence", (), {"description": "none", "has_audio": False})()
        self.pipeline = Pipeline(source=source, listener=listener, answerer=answerer, speech=speech, playout=playout,
                                 health=lambda *report: self.health.append(report), speculate=speculate,
                                 warm_up_questions=warm_up_questions)
        self.finished: list[Turn] = []
        self.pipeline.on_turn_end = self.finished.append
        self.pipeline.start()

    def wait(self, condition, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)

    def stop(self) -> None:
        self.pipeline.stop()


@pytest.fixture
def harness(request):
    made: list[Harness] = []

    def make(**options) -> Harness:
        made.append(Harness(**options))
        return made[-1]

    yield make
    for h in made:
        h.stop()
