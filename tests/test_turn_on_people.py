"""End of turn on people: the labelled recordings of real speech (tests/data/people_turns.toml), the
figures computed from them, and the endpointer's decision at a person's real pause and real end.

The model's overall quality on these points is measured, not asserted (tools/turn_on_people.py; the
README's figures): it is what keeps Smart Turn off by default."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from talkerd.errors import ConfigError
from talkerd.bench.people_turns import Cut, Verdict, check_lengths, heard_at, load_cuts, ranking, read_recording, rows
from talkerd.listen.end_of_turn import RATE, SmartTurn
from talkerd.listen.endpointer import Endpointer, make_detector

from .conftest import ROOT
from .test_listening import frames_of

SET = ROOT / "tests" / "data" / "people_turns.toml"
RECORDINGS = ROOT / "var" / "recordings"


@pytest.fixture(scope="module")
def labelled():
    files, cuts = load_cuts(SET)
    return {name: read_recording(RECORDINGS / file) for name, file in files.items()}, cuts


def test_every_point_lies_inside_its_recording_and_each_utterance_ends_complete(labelled):
    recordings, cuts = labelled
    assert {cut.recording for cut in cuts} == set(recordings)
    by_utterance: dict[tuple, list[Cut]] = {}
    for cut in cuts:
        by_utterance.setdefault((cut.recording, cut.text, cut.start_s), []).append(cut)
    for (recording, text, start), points in by_utterance.items():
        times = [p.at_s for p in points]
        assert times == sorted(times) and start < times[0], text
        assert times[-1] * RATE <= len(recordings[recording]), text
        assert [p.complete for p in points] == [False] * (len(points) - 1) + [True], text
    # What the model hears at a point: from just before the utterance to the point, then the pause.
    cut = cuts[-1]
    heard = heard_at(recordings[cut.recording], cut, pause_s=0.2)
    assert len(heard) == pytest.approx((cut.at_s - cut.start_s + 0.1 + 0.2) * RATE, abs=2)
    assert not heard[-int(0.2 * RATE):].any() and heard[: -int(0.2 * RATE)].any()


def verdict(complete: bool, probability: float) -> Verdict:
    return Verdict(Cut("r", "t", "w", 0.0, 1.0, complete), probability)


def test_the_rows_count_ends_ended_and_points_cut_off_at_each_threshold():
    found = [verdict(True, 0.9), verdict(True, 0.4), verdict(False, 0.6), verdict(False, 0.1), verdict(False, 0.5)]
    (low, high) = rows(found, (0.5, 0.7))
    assert (low.complete_ended, low.complete, low.unfinished_cut, low.unfinished) == (1, 2, 2, 3)
    assert (high.complete_ended, high.unfinished_cut) == (1, 0)
    # 0.9 beats all three unfinished; 0.4 beats one of them: 4 of 6 pairs.
    assert ranking(found) == pytest.approx(4 / 6)
    assert ranking([verdict(True, 0.5), verdict(False, 0.5)]) == 0.5
    assert ranking([verdict(True, 0.5)]) is None  # nothing to rank against


@pytest.fixture(scope="module")
def smart_turn(default_config):
    engine = SmartTurn.load(default_config.engines, "smart-turn")
    yield engine
    engine.close()


def read_sentence_with_a_pause(labelled, after: str, pause_s: float) -> tuple[np.ndarray, float]:
    """The person's read sentence with a pause after the word ``after``, between silences; and where
    the speech truly ends, in seconds."""
    recordings, cuts = labelled
    point = next(c for c in cuts if c.recording == "read_sentence" and c.after == after)
    end = next(c for c in cuts if c.recording == "read_sentence" and c.complete)
    audio = (recordings["read_sentence"] * 32768).astype(np.int16)
    cut, stop = int(point.at_s * RATE), int(end.at_s * RATE)
    lead = np.zeros(RATE // 2, np.int16)
    spoken = [lead, audio[:cut], np.zeros(int(pause_s * RATE), np.int16), audio[cut:stop], np.zeros(RATE, np.int16)]
    return np.concatenate(spoken), (len(lead) + stop) / RATE + pause_s


def test_a_person_pausing_mid_sentence_is_waited_for_and_ended_at_the_sentence_end(default_config, smart_turn, labelled):
    """A real pause of 500 ms after "and" (shorter than the longest silence, so only the model could end
    the turn there): the model says the sentence goes on, the endpointer waits; at the true end the model
    says complete and the turn ends at the short pause, before the longest silence."""
    config = default_config.endpointer.model_copy(update={"end_of_turn": "smart-turn", "min_silence_ms": 600})
    audio, speech_end = read_sentence_with_a_pause(labelled, "and", 0.5)
    endpointer = Endpointer(config, make_detector(config), smart_turn)
    ended = [e.utterance for f in frames_of(audio) if (e := endpointer.feed(f)) is not None and e.utterance]
    assert len(ended) == 1, ended
    assert ended[0].ended_by == "turn model"
    assert ended[0].speech_end == pytest.approx(speech_end, abs=0.15)
    waited_ms = (ended[0].declared_at - ended[0].speech_end) * 1000
    assert config.pause_ms - 30 <= waited_ms < config.min_silence_ms


def test_a_malformed_set_is_named_with_its_field(tmp_path):
    bad = tmp_path / "set.toml"
    bad.write_text('[recordings.a]\nfile = "a.wav"\n\n[[utterance]]\nrecording = "b"\ntext = "Hello?"\n'
                   'start = 1.0\ncuts = [{ after = "hello", at = 1.4, complete = true }]\n')
    with pytest.raises(ConfigError, match=r"set.toml: \(top level\): .*recordings not in \[recordings\]: b"):
        load_cuts(bad)
    bad.write_text('[recordings.a]\nfile = "a.wav"\n\n[[utterance]]\nrecording = "a"\ntext = "Hello?"\n'
                   'start = 1.0\ncuts = [{ after = "hello", at = 0.5, complete = true }]\n')
    with pytest.raises(ConfigError, match=r"utterance\.0: cuts: one or more, in time order, after start"):
        load_cuts(bad)


def test_the_tool_says_which_recording_it_cannot_read(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "turn_on_people.py"), str(ROOT / "configs" / "default.toml"),
                           "--recordings", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 69 and "conversation.wav" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_recording_or_a_point_past_its_end_is_named(tmp_path, labelled):
    not_wav = tmp_path / "a.wav"
    not_wav.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="a.wav: not a readable WAV file"):
        read_recording(not_wav)
    recordings, cuts = labelled
    late = Cut("read_sentence", "He turned sharply.", "sharply", 0.1, 60.0, True)
    with pytest.raises(ValueError, match=r"'sharply' .* past the end of 'read_sentence'"):
        check_lengths(recordings, cuts + (late,))
    check_lengths(recordings, cuts)  # the shipped set's points all lie inside their recordings
