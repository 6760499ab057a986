"""``talkerd run``: start-up, the render loop on the main thread, reload and shutdown.

Boot to avatar: the window (or video) shows the idle avatar at once while the models load in a
background thread; READY=1 goes to systemd when everything is warm.
"""
from __future__ import annotations

import logging
import os
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .audio import portaudio
from .listen.sources import InputChoice, open_source
from .components import Components, State, build_pipeline, load_all, venue_snapshot
from .config import Config, load_config
from .errors import ComponentUnavailable, ConfigError, ExitCode
from .events import EventBus, EventKind
from .logging_setup import RecentProblems
from .ota.daemon_side import catch_up as catch_up_engines, release_of
from .pipeline import Pipeline
from .signals import SignalRelay
from .speak.playout import DEFAULT_OUTPUT_RATE, NullOutput, OutputMode, Playout, PyAudioOutput

if TYPE_CHECKING:
    from .render.sinks import DisplayChoice

log = logging.getLogger(__name__)
AVATAR_SHOWN = "avatar on screen; loading models"
"""STATUS= once the first frame is shown, which comes before READY=1 (the benchmark times both)."""

LOAD_TIMEOUT_EXTENSION_S = 60
STOP_DEADLINE_S = 4.5
"""After SIGTERM/SIGINT the daemon is gone within this, even if a part will not let go (a hung stage,
a stuck device): systemd's stop then never waits for its TimeoutStopSec and SIGKILL."""
ANSWER_TIMEOUT_S = 120.0


def stdin_has_questions() -> bool:
    """A terminal, a pipe or a file on stdin: typed questions may come (not /dev/null or closed)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return sys.stdin.isatty() or stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def _close_audio_devices() -> None:
    try:
        portaudio().shutdown()
    except ComponentUnavailable as exc:  # a stream stuck in a dead device: the process exits anyway
        log.warning("audio devices not closed cleanly: %s", exc.message)


def _say_on_terminal(line: str) -> None:
    """The typed-question conversation, on stdout (the log goes to stderr)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class RunOptions:
    config_path: Path
    input: InputChoice = InputChoice.parse("auto")
    """Where audio comes from and whether typed questions are read (``--input``, parsed by the CLI)."""
    display: "DisplayChoice" = field(default_factory=lambda: _display_choice("auto"))
    """Where the avatar is shown (``--display``, parsed by the CLI)."""
    output: OutputMode = OutputMode.AUTO
    """Where speech is played (``--output``)."""


def _display_choice(text: str) -> "DisplayChoice":
    from .render.sinks import DisplayChoice  # the display needs OpenCV; the daemon's import does not

    return DisplayChoice.parse(text)


def _display_state(choice, sink) -> State:
    """The display on the health board: a window asked for with no X server to show it is a fault the
    status must show, not a daemon that draws to nothing while it reports ready."""
    from .render import NullSink
    from .render.sinks import DisplayMode

    if choice.mode is DisplayMode.NONE:
        return State.OFF
    return State.UNAVAILABLE if isinstance(sink, NullSink) else State.OK


def open_output(mode: OutputMode, config: Config, parts: Components, sample_rate: int):
    if mode is OutputMode.NONE:
        parts.set_state("speaker", "off", "audio output disabled")
        return NullOutput(sample_rate)
    try:
        output = PyAudioOutput(config.audio, sample_rate)
    except ComponentUnavailable as exc:
        parts.set_state("speaker", "unavailable", f"{exc.message}; playing to nothing")
        return NullOutput(sample_rate)
    parts.set_state("speaker", "ok", f"latency {output.latency_s * 1000:.0f} ms")
    return output


class Daemon:
    def __init__(self, options: RunOptions, *, frame_tap=None) -> None:
        """``frame_tap(sink, avatar)`` may wrap the display sink (the soak records what is shown)."""
        from .memory import enforce_budget, MemoryMeter
        from .systemd import Notifier, Watchdog

        self.options = options
        config = load_config(options.config_path)
        self.config, self.plan = enforce_budget(config)
        for note in self.plan.notes:
            log.warning("memory: %s", note)
        self.meter = MemoryMeter()
        self.notifier = Notifier()
        self.watchdog = Watchdog(self.notifier, stale_after_s=self.config.control.heartbeat_stale_s)
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.events = EventBus()
        self.parts = Components(self.config, on_change=self._publish_state)
        self.pipeline: Pipeline | None = None
        self.control = None
        self.started_at = time.monotonic()
        self.display_reason = ""
        self.exit_code = ExitCode.OK
        self._reload_pending = False
        self._reload_lock = threading.Lock()
        self._stop_deadline: threading.Timer | None = None
        self.problems = RecentProblems()
        self.engine_release = None  # the OTA release (ota.daemon_side.Release) the engines came from
        self.render_loop = None
        self._frame_tap = frame_tap
        self.sink = None

    # -- start-up ---------------------------------------------------------------------------------
    def _load_or_stop(self) -> None:
        """The loader thread: a failure here is a bug, so the daemon stops (exit 70) rather than show an
        avatar that never answers."""
        try:
            self._load()
        except Exception:
            log.exception("start-up failed")
            self.exit_code = ExitCode.SOFTWARE
            self.stop_event.set()
            return
        if self._reload_pending:
            self.reload()

    def _load(self) -> None:
        """Runs in a background thread while the avatar is already on screen."""
        choice = self.options.input
        self.notifier.status("loading models")

        def progress(name: str) -> None:
            self.notifier.extend_timeout(LOAD_TIMEOUT_EXTENSION_S)
            self.notifier.status(f"loading {name}")

        self.engine_release = release_of(self.config.engines.dir)
        parts = load_all(self.config, want_asr=choice.has_audio, meter=self.meter, progress=progress,
                         on_change=self._publish_state)
        parts.states.update({k: v for k, v in self.parts.states.items() if k not in parts.states})
        self.parts = parts
        source = open_source(choice, self.config.audio, lambda state, detail: parts.set_state("microphone", state, detail))
        if not choice.has_audio:
            parts.set_state("microphone", "off", "typed input only" if choice.typed == "always" else "no audio input")
        rate = parts.tts.sample_rate if parts.tts is not None else DEFAULT_OUTPUT_RATE
        output = open_output(self.options.output, self.config, parts, rate)
        playout = Playout(
            output,
            rate,
            self.config.audio,
            lip_lead_s=self.config.render.lip_lead_ms / 1000,
            reopen=None if self.options.output is OutputMode.NONE else lambda: PyAudioOutput(self.config.audio, rate),
            on_state=lambda state, detail: parts.set_state("speaker", state, detail),
            tap=self._soundtrack(rate),
        )
        self.pipeline = build_pipeline(parts, source, playout, liveness=self.watchdog, events=self.events)
        for stage in (*self.pipeline.stages_to_start(), "render"):
            self.watchdog.register(stage)
        self.pipeline.start()
        self.watchdog.start()
        if choice.typed == "always" or (choice.typed == "auto" and stdin_has_questions()):
            threading.Thread(target=self._read_stdin, name="talkerd-stdin", daemon=True).start()
        if self.config.persona.greeting and not self.config.conversation.greet:  # else each visitor is greeted
            self.pipeline.say(self.config.persona.greeting)
        self.ready.set()
        catch_up_engines(self)
        self.notifier.ready()
        self.notifier.status(self.summary())
        log.info("ready: %s", self.summary())

    def _publish_state(self, name: str, state) -> None:
        self.events.publish(EventKind.STATE, name=name, state=state.state.value, detail=state.detail)

    def _soundtrack(self, rate: int):
        """When the avatar goes to a video file, the answers' sound goes into it too."""
        from .render import VideoSink

        return self.sink.add_soundtrack(rate).write if isinstance(self.sink, VideoSink) else None

    def _read_stdin(self) -> None:
        """Typed questions from the terminal or a pipe: the development way to talk to the avatar.
        The answer is printed as soon as it is decided; the next line is read once it has been spoken
        (a new question would cut it off)."""
        name = self.config.persona.name
        _say_on_terminal(f"Type a question for {name} and press Enter (Ctrl-C stops).")
        for line in sys.stdin:
            if not line.strip() or self.pipeline is None:
                continue
            turn = self.pipeline.ask(line.strip())
            if turn.wait_decided(ANSWER_TIMEOUT_S):
                _say_on_terminal(f"{name}: {turn.answer}")
            elif turn.done.is_set():
                _say_on_terminal(f"{name} could not answer that (the log says why).")
            else:
                _say_on_terminal(f"{name} did not answer in time ({ANSWER_TIMEOUT_S:.0f} s).")
            turn.done.wait(ANSWER_TIMEOUT_S)
        log.info("typed input ended; still listening to the control socket")

    def summary(self) -> str:
        """systemd's one-line STATUS=: state, turns, engines with their backend, memory of budget, and
        what is missing."""
        from .memory.meter import rss_mb

        states = self.parts.snapshot()
        down = [name for name, s in states.items() if s["state"] in ("unavailable", "degraded")]
        turns = self.pipeline.turns_done if self.pipeline else 0
        engines = ", ".join(f"{name} {e['backend']}" for name, e in sorted(self.parts.engine_board().items()))
        fields = [
            "ready" if self.ready.is_set() else "starting",
            f"{turns} turns",
            *([f"engines {engines}"] if engines else []),
            f"memory {rss_mb():.0f}/{self.plan.budget_mb:.0f} MB",
            *([f"without {', '.join(down)}"] if down else []),
        ]
        return "; ".join(fields)

    # -- control and status -----------------------------------------------------------------------
    def handlers(self) -> dict:
        from .control.api import ControlApi

        return ControlApi(self).handlers()

    def status(self) -> dict:
        """The one status assembler: what `talkerctl status` shows."""
        status = {
            "state": "ready" if self.ready.is_set() else "starting",
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "config": str(self.options.config_path),
            "display": self.display_reason,
            "render": self.render_loop.stats().to_dict() if self.render_loop is not None else None,
            "components": self.parts.snapshot(),
            "memory": {"budget_mb": self.plan.budget_mb, "components": self.meter.report(self.plan)},
            "engines": self.parts.engine_board(),
            "watchers": self.events.watchers,
            "stages": {"heartbeat_age_s": self.watchdog.ages(), "stale_after_s": self.config.control.heartbeat_stale_s,
                       "watchdog_misses": self.watchdog.misses},
            "recent_problems": self.problems.recent(),
            "engines_release": self.engine_release.version if self.engine_release is not None else None,
        }
        if self.pipeline is not None:
            status.update(self.pipeline.status())
        return status

    def reload(self) -> None:
        """SIGHUP: re-read the venue knowledge and the persona's texts, swapped into the answerer as one
        snapshot; everything else (models, devices, barge-in, …) keeps the config it started with until a
        restart. A broken file is logged and the running config kept."""
        if not self.ready.is_set():
            self._reload_pending = True  # the loader reloads once it is done
            log.info("reload requested while loading; it follows when loading is done")
            return
        with self._reload_lock:  # SIGHUPs and `talkerctl reload` one after the other; each replies when done
            self._reload()

    def _reload(self) -> None:
        self.notifier.reloading()
        try:
            config = load_config(self.options.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc.message)
            self.notifier.ready()
            raise
        self.pipeline.swap_venue(venue_snapshot(config))
        log.info("reloaded venue knowledge and persona from %s", self.options.config_path)
        self.notifier.ready()

    def _reload_on_signal(self) -> None:
        try:
            self.reload()
        except ConfigError:
            return  # reload() has logged why and kept the running config

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> int:
        from .control.server import ControlServer
        from .render import make_avatar, open_sink, RenderLoop

        logging.getLogger("talkerd").addHandler(self.problems)  # removed when run() ends
        with self.meter.measure("renderer"):
            avatar = make_avatar(self.config.render)  # a bad portrait is a config error: before anything starts
            sink, self.display_reason = open_sink(self.options.display, self.config.render)
            if self._frame_tap is not None:
                sink = self._frame_tap(sink, avatar)
        self.sink = sink
        log.info("display: %s", self.display_reason)
        self.parts.set_state("display", _display_state(self.options.display, sink), self.display_reason)
        from .control.api import ControlApi

        self.control = ControlServer(self.config.control.socket, self.handlers(), group=self.config.control.group,
                                     restricted=ControlApi.RESTRICTED)
        self.control.start()
        from .control.textfile import MetricsWriter
        metrics = MetricsWriter.start_for(self)  # None unless [metrics] textfile is set
        signals = SignalRelay({
            signal.SIGTERM: self._on_stop_signal, signal.SIGINT: self._on_stop_signal,
            signal.SIGHUP: lambda: threading.Thread(target=self._reload_on_signal, name="talkerd-reload", daemon=True).start(),
        }).start()
        loader = threading.Thread(target=self._load_or_stop, name="talkerd-loader", daemon=True)
        loader.start()
        threading.Thread(target=self._supervise, name="talkerd-supervisor", daemon=True).start()
        self.render_loop = RenderLoop(avatar, sink, self, self.config.render.fps,
                                      on_first_frame=lambda: self.notifier.status(self.summary() if self.ready.is_set() else AVATAR_SHOWN))
        loop = self.render_loop
        try:
            loop.run(self.stop_event)
        finally:
            logging.getLogger("talkerd").removeHandler(self.problems)
            self.notifier.stopping()
            self.watchdog.stop()
            self.control.stop()
            if metrics is not None:
                metrics.stop()  # and one last file
            if self.pipeline is not None:
                self.pipeline.stop()
            sink.close()
            _close_audio_devices()
            signals.stop()
        return self.exit_code

    def _on_stop_signal(self, *_) -> None:
        self.stop_event.set()
        if self._stop_deadline is None:
            self._stop_deadline = threading.Timer(STOP_DEADLINE_S, self._stop_overdue)
            self._stop_deadline.daemon = True
            self._stop_deadline.start()

    def _stop_overdue(self) -> None:
        log.error("not stopped %.1f s after the stop signal (a part does not let go); exiting now", STOP_DEADLINE_S)
        logging.shutdown()
        os._exit(ExitCode.SOFTWARE)

    def sample(self):
        """The render loop's mouth source: the audio clock once the pipeline runs, else rest."""
        from .render.loop import RestSource

        if self.pipeline is None:
            return RestSource().sample()
        return self.pipeline.playout.clock.sample()

    def _supervise(self) -> None:
        """The render loop's heartbeat (it runs on the main thread and must not block for this) and
        STATUS=; the workers beat the watchdog themselves, and it feeds systemd only while all are fresh."""
        while not self.stop_event.wait(1.0):
            if self.pipeline is None:
                continue
            if self.render_loop is not None and self.render_loop.last_frame_at is not None:
                self.watchdog.heartbeat("render", at=self.render_loop.last_frame_at)
            self.notifier.status(self.summary())
