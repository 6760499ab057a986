"""``talkerd soak``: many spoken turns through the real daemon while its devices come and go.

The daemon runs in this process exactly as ``talkerd run --input mic --output speaker`` runs it, on a
private PulseAudio server (``private_pulse``): spoken questions go into its microphone in real time,
its answers are played to its speaker and recorded from the speaker's monitor. Meanwhile the microphone
and the speaker are unplugged and plugged back at random moments, alternately, and a control client
asks for ``status`` every quarter second. The report: turns answered, crashes, every device recovery
and how long it took after the device came back, resident memory / file descriptors / threads at the
start and the end (each taken in a quiet spell after a visitor has left, so both find the daemon in the
same state), and the lip/audio lag over the first and the last turns (the drift).

The only vosk model here is Korean, so each spoken question's recognised text is replaced by its
script (as in ``talkerd bench``); vosk's real work and timing are kept.
"""
from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio import read_wav_mono
from . import named
from .latency import machine_description, synthesize_question
from ..errors import ExitCode, TalkerError
from .lipsync import estimate_lag
from ..messages import Mark, Turn
from .private_pulse import MICROPHONE, RATE, SPEAKER, MicrophoneFeeder, PrivatePulse, SpeakerRecorder
from ..render.readback import mouth_opening

log = logging.getLogger(__name__)

QUESTIONS = (
    "What time does the store open?",
    "Where is the café?",
    "Is there parking?",
    "Do you sell train tickets?",
    "What time do you close?",
    "Are you open on Sundays?",
)
"""Curated and unknown-answer questions of the development venue: short answers, many turns."""
LAG_TURNS = 5
"""Turns at the start and at the end whose lip/audio lag is measured (with no device outage meanwhile:
the drift is the figure, and an outage would change the path the sound takes)."""
MEMORY_EVERY = 25
"""Turns between two memory samples."""
LAG_SEARCH_S = 0.6
"""The lag is searched within ± this: it includes the fixed delay of recording the speaker's monitor."""
CONTROL_PERIOD_S = 0.25
VISITOR_TURNS = 10
"""Questions one visitor asks; then the kiosk is quiet for a while (``asr.renew_idle_s`` and a margin),
as between two visitors, which is when the daemon does its housekeeping (a fresh vosk recogniser)."""
QUIET_MARGIN_S = 5.0
"""A quiet spell lasts ``asr.renew_idle_s`` and this: a microphone outage (at most 4 s) in it must not hide
the quiet from the daemon."""
RENEWAL_TIMEOUT_S = 120.0
"""The longest a quiet spell waits for the fresh recogniser begun in it to be warmed and take over."""
DEVICES = {"microphone": MICROPHONE, "speaker": SPEAKER}
STATE_AGE_RESOLUTION_S = 0.1
"""The status gives how long a part has been in its state to a tenth of a second."""


@dataclass(frozen=True)
class Recovery:
    device: str
    away_s: float
    recovered_after_s: float | None
    """From plugging the device back in to the daemon reporting it ok again; None if it never did."""


@dataclass(frozen=True)
class MemorySample:
    """Where the process's memory is after ``turn`` turns: resident, and what holds it."""

    turn: int
    rss_mb: float
    python_blocks: int
    """Objects the Python allocator holds (``sys.getallocatedblocks``): flat unless Python objects leak."""
    malloc_used_mb: float | None
    """C heap in use (glibc ``mallinfo2``): native libraries' live allocations; None off glibc."""
    malloc_free_mb: float | None
    """C heap freed but kept by the allocator (fragmentation), not returned to the system."""


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def memory_sample(turn: int) -> MemorySample:
    rss, _, _ = process_figures()
    used = free = None
    try:
        info = ctypes.CDLL(None).mallinfo2
    except AttributeError:  # not glibc ≥ 2.33
        pass
    else:
        info.restype = _MallInfo2
        heap = info()
        used, free = round((heap.uordblks + heap.hblkhd) / 2**20, 1), round(heap.fordblks / 2**20, 1)
    return MemorySample(turn, round(rss, 1), sys.getallocatedblocks(), used, free)


@dataclass
class SoakReport:
    machine: str
    turns: int
    answered: int = 0
    lost_to_microphone_outage: int = 0
    unanswered: int = 0
    crashes: int = 0
    recoveries: list[Recovery] = field(default_factory=list)
    rss_mb: tuple[float, float] = (0.0, 0.0)
    fds: tuple[int, int] = (0, 0)
    threads: tuple[int, int] = (0, 0)
    lag_ms: tuple[float | None, float | None] = (None, None)
    start_turn: int = 0
    """Turns done when the start figures (memory, descriptors, threads) were taken."""
    memory_samples: list[MemorySample] = field(default_factory=list)
    """Every ``MEMORY_EVERY`` turns from the start figures on, and at the end."""
    control_requests: int = 0
    control_errors: int = 0
    quiet_spells: int = 0
    """Pauses between visitors (every ``visitor_turns`` turns)."""
    asr_renewals: int = 0
    """Fresh vosk recognisers the daemon made in those pauses."""
    duration_s: float = 0.0

    @property
    def rss_growth_pct_per_100_turns(self) -> float:
        start, end = self.rss_mb
        counted = self.turns - self.start_turn
        return round((end - start) / start * 100 / max(counted / 100, 1e-9), 2) if start else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rss_growth_pct_per_100_turns"] = self.rss_growth_pct_per_100_turns
        start, end = self.lag_ms
        data["lag_drift_ms"] = None if start is None or end is None else round(end - start, 1)
        return data


class OpeningTap:
    """Wraps the display sink: records (time shown, mouth opening) while ``recording`` is set."""

    def __init__(self, sink, avatar) -> None:
        self.sink, self.avatar = sink, avatar
        self.description, self.offline = sink.description, sink.offline
        self.recording = False
        self.frames: list[tuple[float, float]] = []

    def show(self, frame: np.ndarray) -> None:
        self.sink.show(frame)
        if self.recording:
            self.frames.append((time.monotonic(), mouth_opening(frame, self.avatar.mouth_box)))

    def close(self) -> None:
        self.sink.close()


def process_figures() -> tuple[float, int, int]:
    """(resident MiB, open file descriptors, threads) of this process."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return float(fields["VmRSS"].split()[0]) / 1024, len(os.listdir("/proc/self/fd")), int(fields["Threads"])


STEADY_READINGS = 10
"""Thread counts read 0.2 s apart: the fewest is the process's standing threads. An inference running
at that moment (llama.cpp evaluating the history ahead, the voice pre-rendering) adds short-lived
native workers that are not a leak; a leaked thread is there in every reading."""


def steady_figures() -> tuple[float, int, int]:
    """``process_figures`` with the fewest threads of ``STEADY_READINGS`` readings."""
    readings = []
    for _ in range(STEADY_READINGS):
        readings.append(process_figures())
        time.sleep(0.2)
    rss, fds, _ = readings[-1]
    return rss, fds, min(threads for _, _, threads in readings)


class Soak:
    """Drives ``daemon`` (already constructed, run by the caller on the main thread)."""

    def __init__(self, daemon, pulse: PrivatePulse, turns: int, *, seed: int, outage_every_s: float, folder: Path,
                 devices: tuple[str, ...] = tuple(DEVICES), visitor_turns: int = VISITOR_TURNS) -> None:
        """``visitor_turns``: turns between two quiet spells (0: none)."""
        self.daemon, self.pulse, self.turns = daemon, pulse, turns
        self.visitor_turns = visitor_turns
        self.random = random.Random(seed)
        self.outage_every_s = outage_every_s
        self.devices = devices
        self.report = SoakReport(machine_description(), turns)
        self.feeder = MicrophoneFeeder(pulse.fifo)
        self.recorder = SpeakerRecorder(pulse.env)
        self.tap: OpeningTap | None = None
        self._stop = threading.Event()
        self._chaos_stop = threading.Event()
        self._mic_outages: list[tuple[float, float]] = []
        self._devices_in = threading.Lock()
        """Held by the outages from unplugging a device until the daemon has it back."""
        self._questions = [(q, read_wav_mono(synthesize_question(q, folder / f"q{i}.wav"), RATE)) for i, q in enumerate(QUESTIONS)]

    def make_tap(self, sink, avatar) -> OpeningTap:
        self.tap = OpeningTap(sink, avatar)
        return self.tap

    def run(self) -> None:
        """The driver thread: every turn, then stop the daemon."""
        try:
            self._run()
        except Exception:
            log.exception("the soak driver failed")
            self.report.crashes += 1
        finally:
            self._stop.set()
            self._chaos_stop.set()
            self.feeder.stop()
            self.recorder.stop()
            self.daemon.stop_event.set()

    def _run(self) -> None:
        if not self.daemon.ready.wait(300) or self.daemon.pipeline is None:
            raise TalkerError("the daemon did not become ready")
        self.feeder.start()
        self.recorder.start()
        pipeline = self.daemon.pipeline
        self._wait_quiet(pipeline)
        started = time.monotonic()
        chaos = threading.Thread(target=self._unplug_and_plug, name="talkerd-soak-devices", daemon=True)
        control = threading.Thread(target=self._ask_status, name="talkerd-soak-control", daemon=True)
        control.start()
        # Turns 1..lag_turns and the last lag_turns measure the lag; the devices come and go in between.
        lag_turns = min(LAG_TURNS, max(1, (self.turns - 1) // 4))
        start_turn = self._start_turn(lag_turns)
        self.report.start_turn = start_turn
        first_lags, last_lags = [], []
        for number in range(self.turns):
            if number == lag_turns + 1:
                chaos.start()
            if number == self.turns - lag_turns:
                self._chaos_stop.set()
                if chaos.is_alive():
                    chaos.join(30)
            measure = self._measures_lag(number, lag_turns)
            if self._quiet_before(number, lag_turns):
                self._quiet_spell()
            if number == start_turn:
                with self._devices_in:  # not while a device is out: its stream's descriptors would be missing
                    rss, fds, threads = steady_figures()
                self.report.rss_mb, self.report.fds, self.report.threads = (rss, 0.0), (fds, 0), (threads, 0)
            if number >= start_turn and (number - start_turn) % MEMORY_EVERY == 0:
                self.report.memory_samples.append(memory_sample(number))
            # The lag estimate depends on what is said: the turns that measure it all ask the same question.
            turn = self._one_turn(pipeline, 0 if measure else number % len(self._questions), record=measure)
            if turn is not None and measure:
                lag = self._lag(turn)
                if lag is not None:
                    (first_lags if number <= lag_turns else last_lags).append(lag)
        self._stop.set()
        for thread in (chaos, control):
            if thread.is_alive():
                thread.join(30)
        if self.visitor_turns:
            self._quiet_spell()  # the last visitor leaves: the end figures are taken as the start ones were
        rss, fds, threads = steady_figures()
        self.report.memory_samples.append(memory_sample(self.turns))
        self.report.rss_mb = (round(self.report.rss_mb[0], 1), round(rss, 1))
        self.report.fds = (self.report.fds[0], fds)
        self.report.threads = (self.report.threads[0], threads)
        self.report.lag_ms = tuple(round(statistics.median(l), 1) if l else None for l in (first_lags, last_lags))
        self.report.crashes += sum("worker stopped" in s["detail"] for s in self.daemon.parts.snapshot().values())
        self.report.asr_renewals = getattr(self.daemon.parts.asr, "renewals", 0)
        self.report.duration_s = round(time.monotonic() - started, 1)

    def _measures_lag(self, number: int, lag_turns: int) -> bool:
        return 1 <= number <= lag_turns or number >= self.turns - lag_turns

    def _quiet_before(self, number: int, lag_turns: int) -> bool:
        """Whether a visitor has just left before turn ``number`` (never inside the lag turns)."""
        return (bool(self.visitor_turns) and number > lag_turns and number % self.visitor_turns == 0
                and not self._measures_lag(number, lag_turns))

    def _start_turn(self, lag_turns: int) -> int:
        """The turn before which the start figures are taken: right after the first quiet spell, the state
        the end figures are taken in too (the kiosk idle, the visitor gone, vosk renewed), once every question
        has been answered; without quiet spells, once every question has been answered."""
        warm = min(len(self._questions), lag_turns)
        return next((n for n in range(warm, self.turns) if self._quiet_before(n, lag_turns)), warm)

    def _one_turn(self, pipeline, which: int, *, record: bool) -> Turn | None:
        question, audio = self._questions[which]
        pipeline.question_filter = functools.partial(named, question)
        done_before, turn_before = pipeline.turns_done, pipeline.turns.current
        if record:
            self.tap.recording = self.recorder.recording = True
        spoken_from = time.monotonic()
        self.feeder.speak(audio)
        spoken_until = spoken_from + len(audio) / RATE
        while pipeline.turns_done == done_before and time.monotonic() < spoken_until + 60:
            unheard = pipeline.turns.current is turn_before and not self._question_may_be_heard(spoken_from)
            if unheard and time.monotonic() > spoken_until + 3:
                break  # the microphone was out while the question was spoken: nobody heard it
            time.sleep(0.05)
        turn = pipeline.last_turn if pipeline.turns_done > done_before else None
        if turn is not None and turn.question == question:
            self.report.answered += 1
        elif not self._question_may_be_heard(spoken_from):
            self.report.lost_to_microphone_outage += 1
        else:
            self.report.unanswered += 1
            log.warning("soak: %r was not answered", question)
        self._wait_quiet(pipeline)
        if record:
            self.tap.recording = self.recorder.recording = False
        return turn

    def _quiet_spell(self) -> None:
        """One visitor left, the next is not there yet: nobody speaks for a while."""
        time.sleep(self.daemon.config.asr.renew_idle_s + QUIET_MARGIN_S)
        asr = self.daemon.parts.asr
        if asr is not None:  # a renewal begun in the quiet warms its recogniser in the background: its end
            asr.wait_renewed(RENEWAL_TIMEOUT_S)  # is the state the figures are taken in
        self.report.quiet_spells += 1

    def _question_may_be_heard(self, spoken_from: float) -> bool:
        """False when a microphone outage overlapped the time the question was being spoken."""
        return not any(gone <= time.monotonic() and back >= spoken_from - 1.0 for gone, back in self._mic_outages)

    @staticmethod
    def _wait_quiet(pipeline) -> None:
        """Until nothing is being said (the greeting, the last answer) and its echo has passed."""
        while pipeline.status()["speaking"]:
            time.sleep(0.05)
        time.sleep(0.4)

    def _lag(self, turn: Turn) -> float | None:
        if Mark.AUDIO_OUT not in turn.marks or Mark.TURN_END not in turn.marks:
            return None
        start, end = turn.marks[Mark.AUDIO_OUT] - 0.5, turn.marks[Mark.TURN_END] + 0.5
        video = np.array([f for f in self.tap.frames if start <= f[0] <= end]) if self.tap.frames else np.zeros((0, 2))
        times, level = self.recorder.envelope(start, end)
        self.tap.frames.clear()
        self.recorder.blocks.clear()
        try:
            return estimate_lag(video, times, level, max_lag_s=LAG_SEARCH_S).lag_ms
        except ValueError as exc:
            log.info("turn %d: lip sync not measured: %s", turn.id, exc)
            return None

    # -- meanwhile --------------------------------------------------------------------------------
    def _unplug_and_plug(self) -> None:
        while not self._chaos_stop.wait(self.outage_every_s * self.random.uniform(0.5, 1.5)):
            with self._devices_in:
                self._one_outage(self.devices[len(self.report.recoveries) % len(self.devices)])

    def _one_outage(self, device: str) -> None:
        away = self.random.uniform(0.5, 4.0)
        self.pulse.unplug(DEVICES[device])
        gone = time.monotonic()
        if device == "microphone":
            self._mic_outages.append((gone, float("inf")))
        time.sleep(away)
        self.pulse.plug(DEVICES[device])
        back = time.monotonic()
        self.recorder.restart()
        if device == "microphone":
            self._mic_outages[-1] = (gone, back)
        self.report.recoveries.append(Recovery(device, round(back - gone, 2), self._time_to_ok(device, gone, back)))

    def _time_to_ok(self, device: str, gone: float, back: float, limit_s: float = 30.0) -> float | None:
        """Seconds from ``back`` until the daemon's status shows ``device`` ok again after the loss it
        noticed; 0 when it was already back in use by then (it can reopen the device while the sound
        server is still loading it). A speaker that was silent notices the loss only when written, so
        an ok that predates the unplugging does not count."""
        seen_down = False
        while time.monotonic() < back + limit_s:
            entry = self.daemon.parts.snapshot().get(device, {})
            state, now = entry.get("state"), time.monotonic()
            seen_down = seen_down or state == "unavailable"
            if state == "ok" and seen_down:
                return round(now - back, 2)
            ok_since = now - entry.get("for_s", 0.0)
            if state == "ok" and ok_since > gone + STATE_AGE_RESOLUTION_S:
                return round(max(0.0, ok_since - back), 2)
            time.sleep(0.02)
        return None

    def _ask_status(self) -> None:
        from ..control.protocol import ControlClient, resolve_socket_path

        path = resolve_socket_path(self.daemon.config.control.socket)
        client = None
        while not self._stop.wait(CONTROL_PERIOD_S):
            self.report.control_requests += 1
            client = client or ControlClient(path, timeout_s=10)
            try:
                client.call("status")
            except TalkerError as exc:
                self.report.control_errors += 1
                log.warning("soak: status failed: %s", exc.message)
                client.close()
                client = None  # a fresh connection for the next request
        if client is not None:
            client.close()


def render_report(report: dict) -> str:
    recoveries = report["recoveries"]
    times = [r["recovered_after_s"] for r in recoveries if r["recovered_after_s"] is not None]
    lines = [
        f"soak on {report['machine']}: {report['turns']} turns in {report['duration_s']:.0f} s",
        f"  answered {report['answered']}, lost while the microphone was out {report['lost_to_microphone_outage']}, "
        f"unanswered {report['unanswered']}, crashes {report['crashes']}",
        f"  device outages {len(recoveries)} (microphone {sum(r['device'] == 'microphone' for r in recoveries)}, "
        f"speaker {sum(r['device'] == 'speaker' for r in recoveries)}); recovered {len(times)}, "
        f"after the device came back: max {max(times, default=0):.2f} s, median {statistics.median(times) if times else 0:.2f} s",
        f"  resident memory after turn {report['start_turn']} {report['rss_mb'][0]:.0f} → at the end {report['rss_mb'][1]:.0f} MiB "
        f"({report['rss_growth_pct_per_100_turns']:+.2f}% per 100 turns)",
        "  memory by turn (resident / C heap used / C heap free-held MiB, Python blocks): " + "; ".join(
            f"{s['turn']}: {s['rss_mb']:.0f} / {s['malloc_used_mb']} / {s['malloc_free_mb']}, {s['python_blocks']}"
            for s in report["memory_samples"]),
        f"  file descriptors {report['fds'][0]} → {report['fds'][1]}; threads {report['threads'][0]} → {report['threads'][1]}",
        f"  lip/audio lag first turns {report['lag_ms'][0]} ms, last turns {report['lag_ms'][1]} ms, drift {report['lag_drift_ms']} ms",
        f"  control requests {report['control_requests']}, errors {report['control_errors']}",
        f"  quiet spells between visitors {report['quiet_spells']}, fresh vosk recognisers {report['asr_renewals']}",
    ]
    return "\n".join(lines)


def soak_command(config_path: Path, turns: int, seed: int, outage_every_s: float, json_path: Path | None,
                 devices: tuple[str, ...] = tuple(DEVICES), visitor_turns: int = VISITOR_TURNS) -> int:
    from ..daemon import Daemon, RunOptions
    from ..listen.sources import InputChoice
    from ..render.sinks import DisplayChoice, DisplayMode
    from ..speak.playout import OutputMode

    if turns < 2 or visitor_turns < 0 or not devices or set(devices) - set(DEVICES):
        print(f"talkerd soak: --turns must be at least 2, --visitor-turns 0 or more, --devices some of {', '.join(DEVICES)}")
        return ExitCode.USAGE
    with tempfile.TemporaryDirectory(prefix="talkerd-soak-") as folder:
        pulse = PrivatePulse(Path(folder)).start()
        os.environ.update(pulse.env)  # before PortAudio initialises: the daemon's devices are the private ones
        try:
            soak = None
            options = RunOptions(config_path, input=InputChoice.parse("mic"), display=DisplayChoice(DisplayMode.NONE),
                                 output=OutputMode.SPEAKER)
            daemon = Daemon(options, frame_tap=lambda sink, avatar: soak.make_tap(sink, avatar))
            soak = Soak(daemon, pulse, turns, seed=seed, outage_every_s=outage_every_s, folder=Path(folder), devices=devices,
                        visitor_turns=visitor_turns)
            driver = threading.Thread(target=soak.run, name="talkerd-soak", daemon=True)
            driver.start()
            code = daemon.run()
            driver.join(30)
        finally:
            pulse.stop()
    report = soak.report.to_dict()
    print(render_report(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
    return code if code else (ExitCode.OK if report["crashes"] == 0 and report["unanswered"] == 0 else ExitCode.FAILURE)
