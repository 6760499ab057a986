"""systemd integration: readiness and status notifications, and a watchdog fed only by live stages.

``Notifier`` sends sd_notify messages through ``systemd.daemon.notify`` (systemd-python; on JetPack the
apt package python3-systemd). When that library is not importable, a few lines here send the same
datagram to ``$NOTIFY_SOCKET`` themselves. The fallback exists because the library is an optional,
natively built extra: a venv made without ``--system-site-packages``, or a machine without
libsystemd-dev to build it, would otherwise leave a ``Type=notify`` unit that never reports READY=1
and is killed at its start timeout. Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.

``Watchdog`` sends WATCHDOG=1 only while every registered stage has sent a heartbeat recently; a hung
stage therefore stops the pings and systemd restarts the daemon. It never runs a free-running timer.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from .logging_setup import setup_logging  # noqa: F401  (part of this module's interface)

__all__ = ["Notifier", "Watchdog", "monotonic_usec", "setup_logging"]

log = logging.getLogger(__name__)

try:
    from systemd import daemon as _sd_daemon
except ImportError:  # see the module docstring: the datagram is sent by _send_datagram instead
    _sd_daemon = None


def _send_datagram(message: str) -> bool:
    """sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET (path or abstract "@name")."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        raise OSError(f"NOTIFY_SOCKET={address!r}: only Unix socket addresses are supported without systemd-python")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode("utf-8"))
    return True


def _send_library(message: str) -> bool:
    assert _sd_daemon is not None
    return bool(_sd_daemon.notify(message))


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares RELOADING's MONOTONIC_USEC with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Tells the service manager how the daemon is doing; a no-op when not started by systemd."""

    def __init__(self, *, use_library: bool | None = None) -> None:
        """``use_library=False`` forces the built-in datagram sender; None picks the library if present."""
        if use_library and _sd_daemon is None:
            raise RuntimeError("systemd-python is not installed")
        library = _sd_daemon is not None if use_library is None else use_library
        self._send: Callable[[str], bool] = _send_library if library else _send_datagram
        self.backend = "systemd-python" if library else "datagram"
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when started by a service manager that wants notifications."""
        return bool(os.environ.get("NOTIFY_SOCKET"))

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one message; False when there is nobody to tell."""
        if not self.enabled:
            return False
        message = "\n".join(fields)
        try:
            return self._send(message)
        except OSError as exc:
            # A lost notification must not stop the daemon; say so once, loudly, then keep serving.
            if not self._warned:
                log.warning("cannot notify systemd (%s): %s", self.backend, exc)
                self._warned = True
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([_status_field(status)] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(_status_field(text))

    def reloading(self) -> bool:
        """Start of a reload; ``ready()`` ends it (systemd 249 has no Type=notify-reload)."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start (or stop) times out: send it before each long load."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1_000_000))}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    @staticmethod
    def watchdog_interval() -> float | None:
        """Seconds within which systemd wants WATCHDOG=1, or None when no watchdog is set for us."""
        usec = os.environ.get("WATCHDOG_USEC")
        if not usec:
            return None
        pid = os.environ.get("WATCHDOG_PID")
        if pid and pid.strip() != str(os.getpid()):
            return None  # the watchdog belongs to another process (e.g. a wrapper that exec'd us)
        try:
            value = int(usec)
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not a number", usec)
            return None
        return value / 1_000_000 if value > 0 else None


def _status_field(text: str) -> str:
    return "STATUS=" + " ".join(text.split())  # one line: a newline would start another field


class Watchdog:
    """Feeds systemd's watchdog only while every registered stage is alive.

    Each stage calls ``heartbeat(name)`` at least every ``stale_after_s`` seconds, including while it
    waits for work (a queue ``get`` with a timeout, then a heartbeat). A stage that is not running at
    all (a component the daemon carries on without) is ``unregister``-ed rather than left stale.
    """

    def __init__(self, notifier: Notifier, stale_after_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        self._notifier = notifier
        self._stale_after_s = stale_after_s
        self._clock = clock
        self._beats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._reported: list[str] = []
        self._misses = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, stage: str) -> None:
        """Watch ``stage``; registering counts as its first heartbeat."""
        self.heartbeat(stage)

    def unregister(self, stage: str) -> None:
        with self._lock:
            self._beats.pop(stage, None)

    def heartbeat(self, stage: str, at: float | None = None) -> None:
        """``stage`` is alive (``at``: when it last was, on this watchdog's clock; default now)."""
        with self._lock:
            self._beats[stage] = self._clock() if at is None else at

    def ages(self) -> dict[str, float]:
        """Seconds since each watched stage's last heartbeat."""
        now = self._clock()
        with self._lock:
            return {stage: round(now - beat, 1) for stage, beat in sorted(self._beats.items())}

    @property
    def stages(self) -> list[str]:
        with self._lock:
            return sorted(self._beats)

    def check(self) -> list[str]:
        """The stages whose last heartbeat is older than ``stale_after_s``, sorted."""
        now = self._clock()
        with self._lock:
            return sorted(stage for stage, beat in self._beats.items() if now - beat > self._stale_after_s)

    @property
    def misses(self) -> int:
        """How many pings were withheld because a stage was stale, since the start (a fleet's alarm)."""
        with self._lock:
            return self._misses

    def ping(self) -> bool:
        """Send WATCHDOG=1 if no stage is stale; True when sent."""
        stale = self.check()
        if stale:
            with self._lock:
                self._misses += 1
        if stale != self._reported:
            if stale:
                log.error("watchdog withheld: stage(s) without a heartbeat for over %.1f s: %s", self._stale_after_s, ", ".join(stale))
            else:
                log.info("watchdog resumed: every stage is alive again")
            self._reported = stale
        return False if stale else self._notifier.watchdog()

    def start(self, interval_s: float | None = None) -> bool:
        """Ping every half of the watchdog interval from a thread; False when systemd set no watchdog."""
        interval = interval_s if interval_s is not None else self._notifier.watchdog_interval()
        if interval is None:
            log.debug("no systemd watchdog for this process")
            return False
        if self._thread is not None:
            raise RuntimeError("watchdog already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval / 2,), name="watchdog", daemon=True)
        self._thread.start()
        log.info("systemd watchdog: checking %d stage(s) every %.1f s", len(self.stages), interval / 2)
        return True

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self, period_s: float) -> None:
        while not self._stop.wait(period_s):
            self.ping()
