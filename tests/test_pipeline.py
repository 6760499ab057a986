"""The real ``Pipeline`` — its threads, queues and turn registry — with small fakes for every seam.

In-process and fast: the fakes stand for vosk, the venue knowledge, llama.cpp, the Piper engines and the
speaker, each of which has its own tests on the real thing. Assertions are on turn records and on what
reached the (fake) speaker, never on log text.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from talkerd.answer.answerer import VenueSnapshot
from talkerd.config import AudioConfig, PersonaConfig
from talkerd.messages import EndOfTurn, Mark, Route, SpeechChunk, Turn, TurnSource
from talkerd.pipeline import Pipeline
from talkerd.speak.playout import Playout

from .pipeline_fakes import RATE, WAIT_S, FakeDialogue, FakeKnowledge, FakeTts, FastSpeaker, ScriptedMic, harness  # noqa: F401 (the fixture)


def test_a_curated_question_is_answered_as_written(harness):
    h = harness()
    turn = h.pipeline.ask("Where are the toilets?")
    assert turn.done.wait(WAIT_S) and not turn.is_cancelled
    assert turn.route is Route.CURATED and turn.answer == "The toilets are on the left."
    assert h.finished == [turn] and h.dialogue.questions == []
    assert h.speaker.samples > 0 and h.tts.spoken == ["The toilets are on the left."]


def test_a_new_question_supersedes_the_one_being_answered(harness):
    h = harness(dialogue=FakeDialogue("one two three four five six seven eight nine ten", delay_s=0.05))
    first = h.pipeline.ask("Tell me a story")
    h.wait(lambda: h.dialogue.questions)
    second = h.pipeline.ask("Where are the toilets?")
    assert second.done.wait(WAIT_S)
    assert first.is_cancelled and first.done.is_set() and not second.is_cancelled
    assert h.finished == [second]


def test_an_llm_failure_ends_the_answer_with_the_apology(harness):
    h = harness(dialogue=FakeDialogue(error=RuntimeError("llama_decode returned -1")))
    turn = h.pipeline.ask("How are you?")
    assert turn.done.wait(WAIT_S) and turn.route is Route.SMALLTALK
    assert turn.answer == "Sorry, I lost my words."
    assert h.finished == [turn]


def test_a_tts_failure_skips_one_clause_and_the_turn_goes_on(harness):
    h = harness(dialogue=FakeDialogue("First we go left. Then FAIL happens here. And we arrive at last."))
    turn = h.pipeline.ask("facts: how do I get there?")
    assert turn.done.wait(WAIT_S) and turn.route is Route.FACTS
    assert len(turn.answer_record.clauses) == 3
    assert h.tts.spoken == ["First we go left.", "And we arrive at last."]
    assert [(stage, state) for stage, state, _ in h.health] == [("tts", "degraded")]
    assert h.finished == [turn]


def test_say_and_play_enter_past_the_answerer(harness):
    h = harness()
    said = h.pipeline.say("Welcome. The shop closes in ten minutes.")
    assert said.done.wait(WAIT_S) and said.route is Route.SAY
    assert said.answer_record.clauses == ("Welcome.", "The shop closes in ten minutes.")
    before = h.speaker.samples
    recording = (2000 * np.sin(np.arange(RATE) / 4)).astype(np.int16)
    played = h.pipeline.play(recording, RATE, "announcement.wav")
    assert played.done.wait(WAIT_S) and played.route is Route.PLAY
    assert h.speaker.samples - before == np.count_nonzero(recording)
    assert h.dialogue.questions == [] and h.finished == [said, played]


def test_a_cancelled_turn_is_dropped_at_every_boundary(harness):
    h = harness(dialogue=FakeDialogue("a b c d e f g h i j k l m n o p", delay_s=0.05))
    busy = h.pipeline.ask("Keep the brain busy")
    h.wait(lambda: h.dialogue.questions)
    # Queued behind the busy turn: cancelled before the brain takes it, the LLM never sees it.
    queued = Turn(TurnSource.TYPED, question="Never asked")
    h.pipeline.questions.put(type("Question", (), {"turn": queued, "text": queued.question})())
    h.pipeline.turns.cancel(queued)
    # Clauses of a cancelled turn are not synthesised, chunks of one are not played.
    from talkerd.messages import Clause, SpeechChunk

    gone = Turn(TurnSource.SAY)
    h.pipeline.turns.cancel(gone)
    h.pipeline.clauses.put(Clause(gone, "Never spoken", 0))
    h.pipeline.playout.queue.put(SpeechChunk(gone, np.full(800, 1000, np.int16), RATE, np.zeros((3, 4), np.float32), 30))
    h.pipeline.turns.cancel(busy)
    last = h.pipeline.ask("Where are the toilets?")
    assert last.done.wait(WAIT_S)
    assert "Never asked" not in h.dialogue.questions and "Never spoken" not in h.tts.spoken
    assert h.finished == [last]
    assert busy.is_cancelled and queued.is_cancelled and gone.is_cancelled


def test_a_heard_question_is_answered(harness):
    h = harness(mic=True)
    h.mic.speak(b"S")
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    turn = h.finished[0]
    assert turn.source is TurnSource.VOICE and turn.question == "where are the toilets" and turn.route is Route.CURATED


TRACE_ORDER = (Mark.SPEECH_END, Mark.END_OF_TURN, Mark.ASR_FINAL, Mark.KNOWLEDGE, Mark.FIRST_CLAUSE, Mark.FIRST_AUDIO,
               Mark.AUDIO_WRITTEN, Mark.AUDIO_OUT, Mark.FIRST_SOUND, Mark.TURN_END)


def test_a_heard_turn_traces_every_step_in_pipeline_order(harness):
    h = harness(mic=True)
    h.mic.speak(b"S")
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    marks = h.finished[0].marks
    assert all(mark in marks for mark in TRACE_ORDER), sorted(marks)
    times = [marks[mark] for mark in TRACE_ORDER]
    assert times == sorted(times), dict(zip(TRACE_ORDER, times))


def _played(chunks: list[np.ndarray], speaker) -> tuple[Turn, float]:
    """One turn of ``chunks`` played by a real ``Playout`` on ``speaker``, and the playout's latency."""
    playout = Playout(speaker, RATE, AudioConfig(output_buffer_ms=20))
    turn, stop = Turn(TurnSource.SAY), threading.Event()
    playout.on_turn_end = lambda turn, at: turn.done.set()
    worker = threading.Thread(target=playout.run, args=(stop,), daemon=True)
    worker.start()
    try:
        for audio in chunks:
            playout.queue.put(SpeechChunk(turn, audio, RATE, np.zeros((1, 4), np.float32), 30))
        playout.queue.put(EndOfTurn(turn))
        assert turn.done.wait(WAIT_S)
    finally:
        stop.set()
        worker.join(10)
    return turn, playout.clock.latency_s


class LaggingSpeaker(FastSpeaker):
    """``FastSpeaker`` with 60 ms between a sample's write and its sound (a device's buffer)."""
    latency_s = 0.06


def test_the_trace_shows_the_output_buffer_and_the_voices_leading_silence():
    silence, tone = np.zeros(RATE // 4, np.int16), (3000 * np.sin(np.arange(RATE // 10) / 3)).astype(np.int16)
    turn, latency_s = _played([np.concatenate([silence, tone])], LaggingSpeaker())
    marks = turn.marks
    assert latency_s >= 0.06
    assert marks[Mark.AUDIO_OUT] - marks[Mark.AUDIO_WRITTEN] == pytest.approx(latency_s)
    # The first audible sample is sample 1 of the tone (sin 0 is silent): a quarter second in.
    assert marks[Mark.FIRST_SOUND] - marks[Mark.AUDIO_OUT] == pytest.approx((len(silence) + 1) / RATE)
    assert type(marks[Mark.FIRST_SOUND]) is float  # a plain number in logs and JSON, not numpy's


def test_a_silent_first_chunk_leaves_the_first_sound_to_the_next():
    silence, tone = np.zeros(RATE // 4, np.int16), np.full(RATE // 10, 2000, np.int16)
    turn, _ = _played([silence, tone], FastSpeaker())
    marks = turn.marks
    # The tone is handed over once the whole silent chunk has been written (at 50 times real time).
    assert marks[Mark.FIRST_SOUND] - marks[Mark.AUDIO_OUT] >= len(silence) / RATE / 50


@pytest.mark.parametrize("barge_in", [True, False])
def test_speaking_over_the_avatar_interrupts_it_only_with_barge_in(harness, barge_in):
    h = harness(mic=True, barge_in=barge_in)
    long = h.pipeline.say(" ".join(["This is a long announcement that goes on."] * 8))
    h.wait(lambda: h.speaker.samples > 0)
    h.mic.speak(b"S")
    if barge_in:
        h.wait(lambda: long.done.is_set())
        assert long.is_cancelled and h.finished == []
    else:
        assert long.done.wait(WAIT_S) and not long.is_cancelled and h.finished == [long]


def test_a_visitor_is_heard_while_the_answer_plays_to_a_lost_speaker(harness):
    """Without barge-in the avatar's own voice is ignored; once its speaker is gone there is none to ignore."""
    h = harness(mic=True)
    long = h.pipeline.say(" ".join(["This is a long announcement that goes on."] * 8))
    h.wait(lambda: h.speaker.samples > 0)
    h.speaker.unplug()
    h.wait(lambda: not h.pipeline.playout.audible)
    assert h.pipeline.status()["speaking"]  # the face still speaks, to nothing
    h.mic.speak(b"S")
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    assert long.is_cancelled
    assert [turn.question for turn in h.finished] == ["where are the toilets"]


def test_a_reloaded_snapshot_answers_the_next_question(harness):
    h = harness()
    persona = PersonaConfig(name="Ava", unknown_answer="?", apology="Sorry.", greeting="")
    h.pipeline.answerer.swap(VenueSnapshot(persona, None, FakeKnowledge(curated="The toilets moved upstairs.")))
    turn = h.pipeline.ask("Where are the toilets?")
    assert turn.done.wait(WAIT_S) and turn.answer == "The toilets moved upstairs."


def test_a_reload_swaps_persona_and_knowledge_but_not_barge_in(harness, tmp_path):
    """``talkerd run``'s reload on the real config files: the venue's answers follow the edit at once,
    ``audio.barge_in`` (which needs echo cancellation set up) waits for a restart."""
    from talkerd.daemon import Daemon, RunOptions

    from .daemon_harness import write_config

    config = write_config(tmp_path)
    daemon = Daemon(RunOptions(config))
    h = harness(mic=True, barge_in=daemon.config.audio.barge_in)
    daemon.pipeline = h.pipeline
    daemon.ready.set()
    text = config.read_text()
    assert "[audio]" not in text and "We open at 9 in the morning" in text
    config.write_text(text.replace("We open at 9 in the morning", "We open at 7 in the morning") + "\n[audio]\nbarge_in = true\n")
    daemon.reload()
    assert h.pipeline.listener.barge_in is False
    turn = h.pipeline.ask("What time does the store open?")
    assert turn.done.wait(WAIT_S) and turn.answer.startswith("We open at 7 in the morning"), turn.answer


def test_engines_are_swapped_between_clauses_without_a_restart(harness):
    h = harness()
    first = h.pipeline.say("Spoken by the first voice.")
    assert first.done.wait(WAIT_S)
    replacement = FakeTts()
    h.pipeline.speech.swap_engines(replacement, None)
    second = h.pipeline.say("Spoken by the second voice.")
    assert second.done.wait(WAIT_S)
    assert h.tts.spoken == ["Spoken by the first voice."] and replacement.spoken == ["Spoken by the second voice."]


def test_without_a_recogniser_the_microphone_is_still_read(harness):
    """A missing ASR model must not hide the microphone's state: its frames are taken and dropped."""
    h = harness()
    mic = ScriptedMic()
    pipeline = Pipeline(source=mic, listener=None, answerer=h.pipeline.answerer, speech=h.pipeline.speech,
                        playout=Playout(FastSpeaker(), RATE, AudioConfig()))
    pipeline.start()
    try:
        h.wait(lambda: "listener" in pipeline.liveness.beats)
    finally:
        pipeline.stop()


def test_the_pipeline_imports_without_opencv():
    """Producers never import their consumers: nothing on the data path needs the renderer's OpenCV."""
    import subprocess
    import sys

    from .conftest import ROOT

    code = "import sys; sys.modules['cv2'] = None; import talkerd.pipeline, talkerd.components, talkerd.daemon"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_muted_microphone_is_read_but_not_heard_until_unmuted(harness):
    h = harness(mic=True)
    assert h.pipeline.set_muted(True) == {"muted": True} and h.pipeline.status()["muted"]
    h.mic.speak(b"S")
    h.mic.speak(b"E")
    h.wait(lambda: h.mic.queue.empty())
    h.pipeline.set_muted(False)
    h.mic.speak(b"E")  # the end of an utterance whose start was muted: nothing to answer
    h.mic.speak(b"S")
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    assert len(h.finished) == 1 and h.finished[0].source is TurnSource.VOICE
    assert not h.pipeline.status()["muted"]


def test_cancel_stops_the_answer_being_spoken_and_only_that(harness):
    h = harness()
    assert h.pipeline.cancel() == {"cancelled": None}  # nothing being answered
    long = h.pipeline.say(" ".join(["This is a long announcement that goes on."] * 8))
    h.wait(lambda: h.speaker.samples > 0)
    assert h.pipeline.cancel() == {"cancelled": long.id}
    assert long.done.wait(WAIT_S) and long.is_cancelled and h.finished == []
    assert h.pipeline.cancel() == {"cancelled": None}
    after = h.pipeline.ask("Where are the toilets?")
    assert after.done.wait(WAIT_S) and h.finished == [after]


def test_a_watcher_sees_a_spoken_turn_in_order(harness):
    h = harness(mic=True)
    watcher = h.pipeline.events.subscribe()
    h.mic.speak(b"S")
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    turn = h.finished[0]
    events = []
    while (event := watcher.next(0.5)) is not None:
        events.append(event)
    mine = [e for e in events if e.fields.get("turn_id") == turn.id]
    assert [e.kind.value for e in mine] == ["heard", "route", "answer", "turn_end"], events
    assert mine[0].fields["text"] == "where are the toilets" and mine[2].fields["route"] == "curated"
    watcher.close()
    assert h.pipeline.events.watchers == 0


def test_a_slow_watcher_loses_its_oldest_events_and_nothing_waits_for_it():
    from talkerd.events import EventBus, EventKind

    bus = EventBus()
    slow = bus.subscribe(size=3)
    for n in range(10):
        bus.publish(EventKind.PARTIAL, text=str(n))
    assert [slow.next(0).fields["text"] for _ in range(3)] == ["7", "8", "9"] and slow.dropped == 7
    assert slow.next(0) is None
