"""The sound of a video file: what the playout played, on the video's own timeline, muxed into it.

A kiosk without a display writes its avatar to a video file; without a speaker as well (a development
machine), that file is the only place the answers can be heard. The playout hands every block it plays
(speech and the silence between) to ``Soundtrack.write``; the samples go to a WAV beside the video,
padded at the start to the video's length at that moment, and when a video file is finished (a segment
rotated, or the daemon stopping) ffmpeg copies the picture and adds the sound. Without ffmpeg the WAV
stays beside the video.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class Soundtrack:
    def __init__(self, path: Path, rate: int, seconds_of_video) -> None:
        self._rate = rate
        self._seconds_of_video = seconds_of_video
        """Seconds of video written to the current file so far (the video sink's count)."""
        self._lock = threading.Lock()
        self._path = path
        self._wav: wave.Wave_write | None = None

    def write(self, samples: np.ndarray) -> None:
        """The playout's thread: one block as it was played."""
        with self._lock:
            if self._wav is None:
                self._wav = self._open()
            self._wav.writeframes(np.asarray(samples, dtype=np.int16).tobytes())

    def _open(self) -> wave.Wave_write:
        wav = wave.open(str(self.wav_path(self._path)), "wb")
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(self._rate)
        wav.writeframes(bytes(2 * int(self._seconds_of_video() * self._rate)))  # the video so far was silent
        return wav

    @staticmethod
    def wav_path(video: Path) -> Path:
        return video.with_suffix(".wav")

    def finish(self, finished_video: Path, *, wait: bool) -> None:
        """The video file that was being written is done (rotated to ``finished_video``): add its sound.
        The next block starts a new WAV for the next file."""
        with self._lock:
            wav, self._wav = self._wav, None
            if wav is None:
                return
            wav.close()
            audio = self.wav_path(finished_video)
            os.replace(self.wav_path(self._path), audio)
        worker = threading.Thread(target=_mux, args=(finished_video, audio), name="talkerd-soundtrack", daemon=True)
        worker.start()
        if wait:
            worker.join(60)


def _mux(video: Path, audio: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        log.info("no ffmpeg: the sound of %s stays beside it in %s", video, audio)
        return
    muxed = video.with_name(f"{video.stem}.muxing{video.suffix}")
    run = subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(video), "-i", str(audio), "-c:v", "copy",
                          "-c:a", "aac", "-shortest", str(muxed)], capture_output=True, text=True)
    if run.returncode != 0:
        log.warning("could not add the sound to %s (kept in %s): %s", video, audio, run.stderr.strip()[-300:])
        muxed.unlink(missing_ok=True)
        return
    os.replace(muxed, video)
    audio.unlink()
