"""A PulseAudio server of its own, for the soak and the device tests: a speaker and a microphone that
can be unplugged and plugged back in, without touching any other sound server on the machine.

The speaker is a null sink (``SPEAKER``; its monitor records what was played); the microphone is a
pipe source (``MICROPHONE``) fed through a FIFO by ``MicrophoneFeeder`` in real time. ``env`` holds the
variables that point a process's PortAudio (through ALSA's pulse plugin) at this server and these
devices; set them before PortAudio initialises.
"""
from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import ComponentUnavailable

log = logging.getLogger(__name__)

SPEAKER = "talkerd_speaker"
MICROPHONE = "talkerd_mic"
RATE = 16000


class PrivatePulse:
    """``start()`` a private server in ``folder``; ``plug``/``unplug`` its devices; ``stop()``."""

    def __init__(self, folder: Path, speaker_rate: int = 22050) -> None:
        if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
            raise ComponentUnavailable("PulseAudio is not installed (apt install pulseaudio pulseaudio-utils)")
        self.folder = Path(folder)
        self.fifo = self.folder / "mic.fifo"
        self._speaker_rate = speaker_rate
        runtime = self.folder / "runtime"
        (runtime / "pulse").mkdir(parents=True, exist_ok=True)
        self.env = {
            "XDG_RUNTIME_DIR": str(runtime), "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
            "PULSE_STATE_PATH": str(runtime / "pulse"), "PULSE_SERVER": f"unix:{runtime}/pulse/native",
            "PULSE_SINK": SPEAKER, "PULSE_SOURCE": MICROPHONE,
        }
        self._server: subprocess.Popen | None = None
        self.modules: dict[str, str] = {}
        """Device name → its loaded module's index."""

    def start(self) -> PrivatePulse:
        script = self.folder / "server.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.env['PULSE_SERVER'][5:]}\n"
            "load-module module-cli-protocol-unix\n"  # pacmd: pactl cannot end a recording
        )
        self._server = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit=yes", "-n", "-F", str(script)],
            env={**os.environ, **self.env, "HOME": str(self.folder)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if self._pactl("info", check=False).returncode == 0:
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise ComponentUnavailable("the private PulseAudio server did not start")
        self.plug(SPEAKER)
        self.plug(MICROPHONE)
        return self

    def plug(self, device: str) -> None:
        """Load the device's module (plug it in)."""
        if device == SPEAKER:
            args = ["module-null-sink", f"sink_name={SPEAKER}", f"rate={self._speaker_rate}", "channels=1", "norewinds=1"]
        else:
            args = ["module-pipe-source", f"source_name={MICROPHONE}", f"file={self.fifo}", "format=s16le", f"rate={RATE}", "channels=1"]
        self.modules[device] = self._pactl("load-module", *args).stdout.strip()

    def loopback(self, source: str, sink: str, latency_ms: int) -> str:
        """PulseAudio's own loopback from ``source`` to ``sink`` at a known delay; returns its module."""
        return self._pactl("load-module", "module-loopback", f"source={source}", f"sink={sink}",
                           f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true").stdout.strip()

    def unload(self, module: str) -> None:
        self._pactl("unload-module", module)

    def unplug(self, device: str) -> None:
        """Unload the device's module: its streams in every client die, as with a pulled USB plug.

        PulseAudio would move the recordings of a source that goes (the microphone, or the speaker's
        monitor) to another source instead (its built-in stream rescue); those are ended too, as ALSA
        ends them when a USB device goes."""
        recordings = self._recordings_from(device if device == MICROPHONE else f"{device}.monitor")
        self._pactl("unload-module", self.modules.pop(device))
        for index in recordings:
            subprocess.run(["pacmd", "kill-source-output", index], env={**os.environ, **self.env}, capture_output=True, timeout=20)

    def _recordings_from(self, source: str) -> list[str]:
        sources = {cols[1]: cols[0] for cols in self._short_list("sources")}
        return [cols[0] for cols in self._short_list("source-outputs") if cols[1] == sources.get(source)]

    def _short_list(self, kind: str) -> list[list[str]]:
        return [line.split("\t") for line in self._pactl("list", "short", kind).stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            self._server.wait(10)

    def _pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env={**os.environ, **self.env}, capture_output=True, text=True, check=check, timeout=20)


class MicrophoneFeeder:
    """Writes 16 kHz audio into the private microphone's FIFO in real time: queued speech, else silence
    (a FIFO nobody writes to blocks its reader). Survives the microphone being unplugged."""

    def __init__(self, fifo: Path, frame_ms: int = 20) -> None:
        self._fifo = fifo
        self.frame = RATE * frame_ms // 1000
        """Samples per write: each is written when its last sample is due."""
        self._speech: queue.Queue[np.ndarray] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="talkerd-mic-feeder", daemon=True)
        self.finished_at: list[float] = []
        """Monotonic time each queued piece of speech had been written in full."""

    def start(self) -> MicrophoneFeeder:
        self._thread.start()
        return self

    def speak(self, audio: np.ndarray) -> None:
        self._speech.put(np.asarray(audio, dtype=np.int16))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        handle = None
        deadline = time.monotonic()
        current, position = None, 0
        silence = np.zeros(self.frame, np.int16)
        while not self._stop.is_set():
            if current is None:
                try:
                    current, position = self._speech.get_nowait(), 0
                except queue.Empty:
                    pass
            block = silence if current is None else np.pad(current[position : position + self.frame], (0, max(0, self.frame - len(current[position : position + self.frame]))))
            deadline = max(deadline, time.monotonic() - 0.1) + self.frame / RATE
            self._stop.wait(max(0.0, deadline - time.monotonic()))
            handle = handle or self._open()
            if handle is not None:
                try:
                    os.write(handle, block.tobytes())
                except OSError as exc:  # the microphone was unplugged: its reader is gone
                    if exc.errno not in (errno.EPIPE, errno.EAGAIN):
                        raise
                    if exc.errno == errno.EPIPE:
                        os.close(handle)
                        handle = None
            if current is not None:
                position += self.frame
                if position >= len(current):
                    current = None
                    self.finished_at.append(time.monotonic())
        if handle is not None:
            os.close(handle)

    def _open(self) -> int | None:
        try:
            return os.open(self._fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: no reader yet; ENOENT: not created yet
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
            return None


class SpeakerRecorder:
    """Records the private speaker's monitor with ``parecord``, each block stamped with when it was heard.

    Blocks may arrive in bursts, so their times come from the sample count since parecord started,
    anchored at the least-delayed arrival seen. Kept only while ``recording`` (bounded memory in a
    long soak); parecord is restarted after an unplug."""

    def __init__(self, env: dict[str, str], block: int = 320) -> None:
        # parecord falls back to the default source when the monitor is missing (an unplugged speaker):
        # with the monitor as its default too, it fails instead and is started again.
        self._env = {**os.environ, **env, "PULSE_SOURCE": f"{SPEAKER}.monitor"}
        self._block = block
        self.rate = RATE
        self.blocks: list[tuple[float, np.ndarray]] = []
        self.recording = False
        self._stop = threading.Event()
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name="talkerd-speaker-recorder", daemon=True)

    def start(self) -> SpeakerRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.restart()
        self._thread.join(5)

    def restart(self) -> None:
        """Start recording afresh: after a device came back, PulseAudio may have moved the recording
        to another source (it moves streams to a newly plugged device)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._process = process = subprocess.Popen(
                ["parecord", f"--device={SPEAKER}.monitor", f"--rate={RATE}", "--channels=1", "--format=s16le", "--raw", "--latency-msec=10"],
                env=self._env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            samples, anchor = 0, float("inf")
            try:
                while not self._stop.is_set():
                    data = process.stdout.read(self._block * 2)
                    if not data:
                        break  # the speaker was unplugged
                    samples += len(data) // 2
                    anchor = min(anchor, time.monotonic() - samples / self.rate)
                    if self.recording:
                        self.blocks.append((anchor + samples / self.rate, np.frombuffer(data, np.int16)))
            finally:
                process.kill()
                process.wait(5)
                process.stdout.close()
            self._stop.wait(0.2)

    def envelope(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, RMS level) of what was heard between ``start`` and ``end`` (monotonic seconds)."""
        from .lipsync import envelope

        return envelope(list(self.blocks), self.rate, start, end)
