"""The metrics textfile: the exposition rewritten atomically every few seconds for node_exporter.

node_exporter's textfile collector reads every ``*.prom`` file in its folder at each scrape. A reader
must never see half a file, so each version is written to a hidden temporary name in the same folder
(not ``*.prom``: the collector skips it), flushed to disk, and renamed over the old one; the folder
is synced too, so a power cut leaves either version, whole.

``MetricsWriter.start_for(daemon)`` is the daemon's one hook: None when ``[metrics] textfile`` is unset.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from .metrics import Extras, TurnTally, exposition

log = logging.getLogger(__name__)

ATTACH_POLL_S = 0.2
"""How often the writer looks for the pipeline until it can count its turns (it appears once loaded)."""


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)  # the umask must not make it unreadable for node_exporter
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class MetricsWriter:
    """A thread that writes ``daemon.status()`` as exposition to ``path`` every ``interval_s``.

    It also counts every finished turn (by route, and time to first audio as a histogram) by joining
    the pipeline's ``on_turn_end`` once the pipeline exists, keeping whatever was there before.
    A failed write is logged (once per distinct reason) and tried again; it never stops the daemon.
    """

    def __init__(self, daemon, path: Path, interval_s: float) -> None:
        self._daemon = daemon
        self.path = Path(path)
        self.interval_s = interval_s
        self.tally = TurnTally()
        self._attached = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self.writes = 0

    @classmethod
    def start_for(cls, daemon) -> "MetricsWriter | None":
        cfg = daemon.config.metrics
        if cfg.textfile is None:
            return None
        writer = cls(daemon, cfg.textfile, cfg.interval_s)
        writer.start()
        return writer

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("metrics writer already started")
        self._thread = threading.Thread(target=self._run, name="talkerd-metrics", daemon=True)
        self._thread.start()
        log.info("metrics: writing %s every %g s", self.path, self.interval_s)

    def stop(self) -> None:
        """Stop the thread, then write one last file (the state it stopped in)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.write_once()

    def write_once(self) -> bool:
        """One rewrite; False (and logged) when it failed."""
        self._attach()
        try:
            data = exposition(self._daemon.status(), self.tally.snapshot(), self._extras())
            write_atomically(self.path, data)
        except OSError as exc:
            self._report(f"cannot write {self.path}: {exc.strerror or exc}")
            return False
        except Exception as exc:  # a status that cannot be exported is a bug: say so, keep the daemon up
            self._report(f"cannot export the status: {type(exc).__name__}: {exc}", traceback=True)
            return False
        if self._last_error is not None:
            log.info("metrics: writing %s again", self.path)
            self._last_error = None
        self.writes += 1
        return True

    def _extras(self) -> Extras:
        watchdog = getattr(self._daemon, "watchdog", None)
        if watchdog is None:
            return Extras()
        return Extras(watchdog_stale=tuple(watchdog.check()), watchdog_misses=watchdog.misses)

    def _attach(self) -> None:
        """Count the turns of the daemon's current pipeline (once per pipeline)."""
        pipeline = getattr(self._daemon, "pipeline", None)
        if pipeline is None or pipeline is self._attached:
            return
        before = pipeline.on_turn_end

        def on_turn_end(turn) -> None:
            before(turn)
            self.tally.observe(turn)

        pipeline.on_turn_end = on_turn_end
        self._attached = pipeline

    def _report(self, message: str, *, traceback: bool = False) -> None:
        if message != self._last_error:
            log.warning("metrics: %s", message, exc_info=traceback)
            self._last_error = message

    def _run(self) -> None:
        next_write = 0.0
        while not self._stop.is_set():
            self._attach()
            if time.monotonic() >= next_write:
                self.write_once()
                next_write = time.monotonic() + self.interval_s
            # Until the pipeline exists, look for it often: its first turns must be counted too.
            wait = next_write - time.monotonic() if self._attached is not None else ATTACH_POLL_S
            self._stop.wait(max(0.0, min(wait, self.interval_s)))
