"""The spoken-length policy on crafted streams (the real model's answers are in test_conversation.py)."""
from __future__ import annotations

from talkerd.answer.spoken_length import SpeechCaps, LOOP_NGRAM, SpokenLength, StopReason, words


def run(text: str, caps: SpeechCaps, piece_words: int = 1) -> tuple[str, SpokenLength, int]:
    """Stream ``text`` a few words at a time, as an LLM would; returns what was released, the policy
    and how many pieces were consumed before it asked to stop."""
    limiter = SpokenLength(caps)
    tokens = text.split(" ")
    pieces = [" ".join(tokens[i:i + piece_words]) + " " for i in range(0, len(tokens), piece_words)]
    out, consumed = [], 0
    for piece in pieces:
        consumed += 1
        out.append(limiter.feed(piece))
        if limiter.stopped is not None:
            break
    else:
        out.append(limiter.finish())
    return "".join(out), limiter, consumed


def test_a_looping_stream_is_stopped_as_soon_as_it_repeats():
    loop = "We have a lovely café upstairs with coffee and cake. " * 6
    spoken, limiter, consumed = run(loop.strip(), SpeechCaps(max_sentences=5, max_words=100))
    assert limiter.stopped is StopReason.REPETITION
    assert spoken.strip() == "We have a lovely café upstairs with coffee and cake."
    assert consumed < len(loop.split()) / 2  # generation stopped early, not at the end of the stream


def test_a_loop_inside_the_first_sentence_is_stopped():
    period = "the maps are on the left and "
    text = "So " + period * 8
    spoken, limiter, _ = run(text.strip(), SpeechCaps(max_sentences=2, max_words=100))
    assert limiter.stopped is StopReason.REPETITION
    # Stopped within one period and one n-gram of the loop starting, not at the word cap.
    assert len(words(spoken)) <= 1 + len(period.split()) + LOOP_NGRAM


def test_a_nearly_repeated_sentence_is_not_spoken():
    text = "The café is upstairs next to the travel guides. The café is upstairs next to the maps. Enjoy!"
    spoken, limiter, _ = run(text, SpeechCaps(max_sentences=3, max_words=100))
    assert limiter.stopped is StopReason.REPETITION
    assert spoken.strip() == "The café is upstairs next to the travel guides."


def test_the_answer_ends_at_the_sentence_cap():
    text = "We open at 9 a.m. on weekdays. We close at 6 p.m. Saturdays are shorter. Sundays we rest."
    spoken, limiter, _ = run(text, SpeechCaps(max_sentences=2, max_words=100))
    assert limiter.stopped is StopReason.SENTENCES
    assert spoken.strip() == "We open at 9 a.m. on weekdays. We close at 6 p.m."


def test_a_sentence_that_would_pass_the_speech_cap_is_not_started():
    text = "Fiction is on the ground floor. " + "Travel guides, maps, atlases and phrase books are all downstairs near the children's corner."
    spoken, limiter, _ = run(text, SpeechCaps(max_sentences=5, max_words=12))
    assert limiter.stopped is StopReason.SPEECH_TIME
    assert spoken.strip() == "Fiction is on the ground floor."


def test_one_endless_first_sentence_is_cut_at_the_word_cap():
    text = " ".join(f"book{i}" for i in range(40))
    spoken, limiter, _ = run(text, SpeechCaps(max_sentences=2, max_words=10), piece_words=3)
    assert limiter.stopped is StopReason.SPEECH_TIME
    assert len(words(spoken)) == 10 and spoken.endswith(".")


def test_a_short_answer_passes_whole_and_streams_its_first_sentence():
    caps = SpeechCaps(max_sentences=2, max_words=25)
    limiter = SpokenLength(caps)
    assert limiter.feed("The toilets are ") == "The toilets are "  # released before the sentence ends
    assert limiter.feed("downstairs, on") == "downstairs, "  # "on" may be unfinished
    assert limiter.feed(" the left.") == "on the "  # a sentence end is only sure once the next one starts
    assert limiter.finish() == "left."
    assert limiter.released == "The toilets are downstairs, on the left."
    assert limiter.stopped is None


def test_caps_come_from_the_config(default_config):
    llm = default_config.llm
    caps = SpeechCaps.from_config(llm)
    assert caps.max_sentences == llm.max_sentences == 2
    assert caps.max_words == int(llm.max_speech_s * llm.speech_words_per_s)
