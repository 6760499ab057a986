"""Signals, acted on by a thread of their own.

A Python signal handler runs on the main thread between two bytecodes of whatever it interrupted — in
the daemon, the render loop, which spends its life in ``Event.wait``. A handler that takes a lock the
interrupted code holds waits for itself for ever: ``Event.set`` takes the lock ``Event.wait`` holds for a
few bytecodes on each frame, and a SIGTERM that landed there left the daemon running, its stop deadline
never armed, until it was killed. So the Python handlers here do nothing; the signal's number reaches a
relay thread through ``signal.set_wakeup_fd`` (written by the C-level handler, which takes no lock), and
the action runs there.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _noted(signum, frame) -> None:
    """The Python-level handler: nothing (the relay acts); it keeps the default action from running."""


class SignalRelay:
    def __init__(self, actions: Mapping[int, Callable[[], None]]) -> None:
        """``actions``: signal number → what to do, run on the relay thread, one at a time (an action
        that takes long starts its own thread)."""
        self._actions = dict(actions)
        self._previous: dict[int, object] = {}
        self._read = self._write = -1
        self._previous_fd = -1
        self._thread: threading.Thread | None = None

    def start(self) -> SignalRelay:
        """Install the handlers (from the main thread, as ``signal`` requires)."""
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # set_wakeup_fd's C handler must never block
        self._previous = {signum: signal.signal(signum, _noted) for signum in self._actions}
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._relay, name="talkerd-signals", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """The handlers that were there before, and the relay thread gone."""
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        os.close(self._write)  # the relay reads the end of the pipe and returns
        if self._thread is not None:
            self._thread.join(5.0)
        os.close(self._read)

    def _relay(self) -> None:
        while True:
            try:
                received = os.read(self._read, 64)
            except OSError as exc:
                log.error("signal relay: cannot read its pipe (%s); signals are no longer acted on", exc)
                return
            if not received:
                return
            for signum in received:
                action = self._actions.get(signum)
                if action is not None:
                    log.debug("signal %s", signal.Signals(signum).name)
                    action()
