"""The daemon as a kiosk runs it (``talkerd run --input mic --output speaker --display none``), for the
black-box benchmark, with one difference: what vosk heard is replaced by the question the benchmark is
speaking, which it names on stdin (one line each) before it speaks it. The only vosk model here is
Korean; vosk's real work and timing are kept, as in ``talkerd bench`` and ``talkerd soak``.

Prints ``ready`` on stdout once the daemon is ready, its fixed answers are pre-rendered and its
recogniser is warmed (that work takes the CPU after READY=1, and a kiosk has long finished it when the
first visitor comes).

    python -m talkerd.bench.scripted_daemon CONFIG [LOG_LEVEL]
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from . import named

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 600.0


class Script:
    """The question being spoken now: set from stdin, read by the pipeline's question filter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._question = ""

    def follow(self, lines) -> None:
        for line in lines:
            with self._lock:
                self._question = line.strip()

    def question(self, heard: str) -> str:
        with self._lock:
            return named(self._question, heard) if self._question else heard


def _prepared(daemon) -> bool:
    """The fixed answers are pre-rendered, and the recogniser is warmed on the venue's questions."""
    status = daemon.pipeline.status()
    cache = status["prerendered"]
    asr = daemon.parts.asr
    return ((cache is None or cache["pending"] == 0) and status["warm_up_pending"] == 0
            and not getattr(asr, "renewing", False))


def _announce_when_ready(daemon, script: Script) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    if not daemon.ready.wait(READY_TIMEOUT_S) or daemon.pipeline is None:
        log.error("the daemon did not become ready within %.0f s", READY_TIMEOUT_S)
        daemon.stop_event.set()
        return
    daemon.pipeline.question_filter = script.question
    while not _prepared(daemon) and time.monotonic() < deadline:
        time.sleep(0.2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    from ..daemon import Daemon, RunOptions
    from ..listen.sources import InputChoice
    from ..logging_setup import setup_logging
    from ..render.sinks import DisplayChoice, DisplayMode
    from ..speak.playout import OutputMode

    setup_logging(argv[1] if len(argv) > 1 else "WARNING")
    options = RunOptions(Path(argv[0]), input=InputChoice.parse("mic"), display=DisplayChoice(DisplayMode.NONE),
                         output=OutputMode.SPEAKER)
    daemon = Daemon(options)
    script = Script()
    threading.Thread(target=script.follow, args=(sys.stdin,), name="talkerd-bench-script", daemon=True).start()
    threading.Thread(target=_announce_when_ready, args=(daemon, script), name="talkerd-bench-ready", daemon=True).start()
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
