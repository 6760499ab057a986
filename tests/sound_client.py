"""Run as a separate process, started with the environment talkerd.service gives the daemon: plays a
WAV to the "default" speaker or records the "default" microphone through talkerd's own PortAudio owner
(talkerd/audio.py), exactly as the daemon opens its devices.

    python tests/sound_client.py play FILE.wav
    python tests/sound_client.py record SECONDS OUT.raw      (16 kHz s16 mono)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from talkerd.audio import StreamSpec, portaudio, read_wav_mono  # noqa: E402

RATE = 16000
BLOCK = 320


def play(path: str) -> None:
    audio = read_wav_mono(Path(path), RATE)
    pcm = audio.astype("<i2").tobytes()
    stream = portaudio().open(StreamSpec("default", output=True, rate=RATE, frames_per_buffer=BLOCK))
    for start in range(0, len(pcm), BLOCK * 2):
        stream.write(pcm[start:start + BLOCK * 2].ljust(BLOCK * 2, b"\0"))
    stream.write(bytes(RATE // 2 * 2))  # half a second of silence: the last block leaves the device
    stream.close()


def record(seconds: float, out: str) -> None:
    stream = portaudio().open(StreamSpec("default", output=False, rate=RATE, frames_per_buffer=BLOCK))
    with open(out, "wb") as sink:
        for _ in range(int(seconds * RATE / BLOCK)):
            sink.write(stream.read(BLOCK))
            sink.flush()
    stream.close()


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "play":
        play(sys.argv[2])
    elif command == "record":
        record(float(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"unknown command {command!r}")
    portaudio().shutdown()
