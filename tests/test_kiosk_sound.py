"""Sound under the service: the kiosk's own PulseAudio (talkerd-sound.service with the shipped
sound.pa) serves a process started the way talkerd.service starts the daemon — no login session, no
XDG_RUNTIME_DIR, a home it cannot use (ProtectHome), only the unit's environment — and that process
plays and records through talkerd's own PortAudio owner.

Here the sound server's cards are stand-ins: a null sink (its monitor records what was played) and a
FIFO source, loaded ahead of the shipped configuration (udev finds no card on this machine). Every
other line of sound.pa, the echo canceller included, runs as shipped."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from talkerd.audio import read_wav_mono

from .conftest import espeak_wav
from .test_systemd_units import ROOT, SERVICE, UNITS, one, read_unit

SOUND_UNIT = UNITS / "talkerd-sound.service"
SOUND_PA = UNITS / "talkerd-sound.pa"
CLIENT_CONF = UNITS / "talkerd-pulse-client.conf"
RUNTIME = "/run/talkerd-sound"
RATE = 16000
STAND_INS = """load-module module-null-sink sink_name=card_out rate=16000 channels=1 norewinds=1
load-module module-pipe-source source_name=card_in file={fifo} format=s16le rate=16000 channels=1
set-default-sink card_out
set-default-source card_in
"""
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unit_environment(unit: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in read_unit(unit)["Service"].get("Environment", []))


def test_the_unit_socket_config_and_client_agree():
    daemon_env = unit_environment(SERVICE)
    assert daemon_env["PULSE_SERVER"] == f"unix:{RUNTIME}/native"
    assert f"socket={RUNTIME}/native" in SOUND_PA.read_text()
    sound = read_unit(SOUND_UNIT)["Service"]
    assert "/run/" + sound["RuntimeDirectory"][0] == RUNTIME and sound["RuntimeDirectoryMode"] == ["0750"]
    assert sound["User"] == ["talkerd"] and "audio" in sound["SupplementaryGroups"][0].split()
    assert "-F /etc/talkerd/sound.pa" in sound["ExecStart"][0]
    assert daemon_env["PULSE_CLIENTCONFIG"] == "/etc/talkerd/pulse-client.conf"
    assert "autospawn = no" in CLIENT_CONF.read_text()
    assert "module-suspend-on-idle" not in [line.split()[1] for line in SOUND_PA.read_text().splitlines() if line.startswith("load-module")]


class KioskSound:
    """The sound unit's own command line and environment, with /run/talkerd-sound in a scratch folder."""

    def __init__(self, folder: Path) -> None:
        for tool in ("pulseaudio", "pactl", "parec"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is missing (scripts/setup.sh installs pulseaudio and pulseaudio-utils)")
        self.runtime = folder / "run-talkerd-sound"
        self.runtime.mkdir(mode=0o750)
        self.fifo = folder / "card_in.fifo"
        self.config = folder / "sound.pa"
        shipped = SOUND_PA.read_text().replace(RUNTIME, str(self.runtime))
        self.config.write_text(STAND_INS.format(fifo=self.fifo) + shipped)
        self.server = f"unix:{self.runtime}/native"
        self.process: subprocess.Popen | None = None
        self.log = folder / "pulse.log"

    def command(self) -> list[str]:
        argv = shlex.split(one(read_unit(SOUND_UNIT), "Service", "ExecStart"))
        argv[argv.index("-F") + 1] = str(self.config)
        return [a if a != "--log-target=journal" else f"--log-target=file:{self.log}" for a in argv]

    def start(self) -> "KioskSound":
        env = {k: v.replace(RUNTIME, str(self.runtime)) for k, v in unit_environment(SOUND_UNIT).items()}
        self.process = subprocess.Popen(self.command(), env={"PATH": SYSTEMD_PATH, **env},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while subprocess.run(["pactl", "-s", self.server, "info"], capture_output=True).returncode != 0:
            assert self.process.poll() is None, f"PulseAudio exited: {self.log.read_text() if self.log.exists() else ''}"
            assert time.monotonic() < deadline, "PulseAudio never answered"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def defaults(self) -> dict[str, str]:
        info = subprocess.run(["pactl", "-s", self.server, "info"], capture_output=True, text=True, check=True).stdout
        return dict(line.split(": ", 1) for line in info.splitlines() if line.startswith(("Default Sink:", "Default Source:")))

    def daemon_like(self, *args: str, home: Path) -> subprocess.Popen:
        """A process with what talkerd.service gives the daemon (its Environment=, a HOME it cannot
        write, systemd's PATH) and nothing of this session (no XDG_RUNTIME_DIR, no D-Bus)."""
        env = unit_environment(SERVICE)
        env["PULSE_SERVER"] = self.server
        env["PULSE_CLIENTCONFIG"] = str(CLIENT_CONF)
        env.update(PATH=SYSTEMD_PATH, HOME=str(home))
        return subprocess.Popen([sys.executable, str(ROOT / "tests" / "sound_client.py"), *args], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def kiosk_sound(tmp_path):
    sound = KioskSound(tmp_path).start()
    yield sound
    sound.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = espeak_wav("Where are the toilets, please?", tmp_path_factory.mktemp("speech") / "question.wav")
    return path, read_wav_mono(path, RATE).astype(np.float64)


def best_match(recorded: np.ndarray, reference: np.ndarray) -> float:
    """Correlation of ``reference`` with the part of ``recorded`` it lines up with best."""
    assert len(recorded) > len(reference), f"recorded only {len(recorded)} samples"
    lag = int(np.argmax(np.abs(np.correlate(recorded, reference, "valid"))))
    return float(np.corrcoef(recorded[lag:lag + len(reference)], reference)[0, 1])


def test_the_echo_cancelled_pair_is_the_default(kiosk_sound):
    assert kiosk_sound.defaults() == {"Default Sink": "talkerd_speaker", "Default Source": "talkerd_mic"}


def test_a_process_started_like_the_daemon_plays_through_the_kiosk_sound_server(kiosk_sound, speech, tmp_path):
    path, reference = speech
    played = tmp_path / "played.raw"
    with open(played, "wb") as sink:
        card = subprocess.Popen(["parec", "-s", kiosk_sound.server, "-d", "card_out.monitor", "--rate=16000",
                                 "--channels=1", "--format=s16le", "--latency-msec=20"], stdout=sink)
    try:
        player = kiosk_sound.daemon_like("play", str(path), home=tmp_path / "no-home")
        out, err = player.communicate()
        assert player.returncode == 0, err
        # The card's monitor runs on at real time: one more second of it holds the last played block.
        wanted = played.stat().st_size + 2 * RATE
        while played.stat().st_size < wanted:
            assert card.poll() is None, "parec stopped"
            time.sleep(0.05)
    finally:
        card.terminate()
        card.wait()
    recorded = np.frombuffer(played.read_bytes(), "<i2").astype(np.float64)
    assert best_match(recorded, reference) > 0.95


def test_a_process_started_like_the_daemon_records_through_the_echo_canceller(kiosk_sound, speech, tmp_path):
    path, reference = speech
    out_file = tmp_path / "recorded.raw"
    recorder = kiosk_sound.daemon_like("record", "4", str(out_file), home=tmp_path / "no-home")
    pcm = np.concatenate([np.zeros(RATE, np.int16), reference.astype(np.int16), np.zeros(2 * RATE, np.int16)]).tobytes()

    def feed() -> None:  # the microphone: the FIFO written in real time, kept open while recording
        with open(kiosk_sound.fifo, "wb") as fifo:
            due = time.monotonic()
            for start in range(0, len(pcm), 640):
                fifo.write(pcm[start:start + 640])
                fifo.flush()
                due += 0.02
                time.sleep(max(0.0, due - time.monotonic()))
            while recorder.poll() is None:
                fifo.write(bytes(640))
                fifo.flush()
                time.sleep(0.02)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    out, err = recorder.communicate()
    feeder.join()
    assert recorder.returncode == 0, err
    recorded = np.frombuffer(out_file.read_bytes(), "<i2").astype(np.float64)
    assert best_match(recorded, reference) > 0.8
