"""The sequential baseline of the black-box benchmark: the same models as talkerd, one step after the
other, as a first voice kiosk would be written — an energy endpointer that waits for 600 ms of silence,
the whole utterance through vosk, the whole answer, then all of its speech and its mouth track, then
the sound. Nothing streams, nothing is rendered ahead.

It speaks through the same devices the daemon uses (``audio.input_device``, ``audio.output_device``) and,
like ``scripted_daemon``, answers the question the benchmark names on stdin. Prints ``ready`` once loaded.

    python -m talkerd.bench.sequential_kiosk CONFIG [LOG_LEVEL]
"""
from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import numpy as np

from ..audio import StreamSpec, portaudio
from ..listen.endpointer import EnergyDetector
from .scripted_daemon import Script

log = logging.getLogger(__name__)

SILENCE_MS = 600
"""The naive endpointer's fixed silence."""
PREROLL_FRAMES = 10
"""Frames kept from before the onset, so vosk hears the first syllable."""


class SequentialKiosk:
    def __init__(self, config_path: Path) -> None:
        from ..components import build_pipeline, load_all
        from ..config import load_config
        from ..listen.sources import SilenceSource
        from ..speak.playout import NullOutput, Playout

        config = load_config(config_path)
        # Nothing rendered ahead: every answer is synthesised when it is due.
        self.config = config.model_copy(update={"tts": config.tts.model_copy(update={"prerender": False})})
        self.parts = load_all(self.config, want_asr=True)
        rate = self.parts.tts.sample_rate
        pipeline = build_pipeline(self.parts, SilenceSource(), Playout(NullOutput(rate), rate, self.config.audio))
        self.answerer, self.speech = pipeline.answerer, pipeline.speech
        audio = self.config.audio
        self.frame = audio.capture_rate * audio.frame_ms // 1000
        self.mic_spec = StreamSpec(audio.input_device, output=False, rate=audio.capture_rate, frames_per_buffer=self.frame)
        self.speaker = portaudio().open(StreamSpec(audio.output_device, output=True, rate=rate,
                                                   frames_per_buffer=rate * audio.output_buffer_ms // 1000))
        self.detector = EnergyDetector()
        self.script = Script()

    def run(self) -> None:
        while True:
            pcm = self._listen()
            self._answer(pcm)

    def _listen(self) -> bytes:
        """One utterance: from the first loud frame to ``SILENCE_MS`` of quiet."""
        mic = portaudio().open(self.mic_spec)
        try:
            frames: list[bytes] = []
            speaking, quiet_frames = False, 0
            needed = SILENCE_MS // self.config.audio.frame_ms
            while True:
                pcm = mic.read(self.frame)
                loud = self.detector.speech_probability(np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0) >= 0.5
                frames.append(pcm)
                if not speaking:
                    frames = frames[-PREROLL_FRAMES:]
                    speaking = loud
                    continue
                quiet_frames = 0 if loud else quiet_frames + 1
                if quiet_frames >= needed:
                    return b"".join(frames)
        finally:
            mic.close()  # no barge-in: the kiosk does not listen while it answers

    def _answer(self, pcm: bytes) -> None:
        asr = self.parts.asr
        asr.start()
        step = self.frame * 2
        for start in range(0, len(pcm), step):
            asr.accept(pcm[start : start + step])
        question = self.script.question(asr.finish().text)
        text = " ".join(self.answerer.reply(question, record=False).clauses())
        chunks = list(self.parts.tts.synthesize(text))
        for chunk in chunks:
            self.speech.mouth_track(chunk.audio, chunk.sample_rate, chunk.phonemes)
        audio = np.concatenate([chunk.audio for chunk in chunks]) if chunks else np.zeros(0, np.int16)
        log.info("sequential: %r → %r", question, text)
        self.speaker.write(np.asarray(audio, np.int16).tobytes())


def main(argv: list[str]) -> int:
    from ..logging_setup import setup_logging

    setup_logging(argv[1] if len(argv) > 1 else "WARNING")
    kiosk = SequentialKiosk(Path(argv[0]))
    threading.Thread(target=kiosk.script.follow, args=(sys.stdin,), name="talkerd-bench-script", daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    kiosk.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
