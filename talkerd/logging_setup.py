"""Logging for the daemon: journald with structured fields under systemd, concise stderr lines elsewhere.

Library code logs with ``logging.getLogger(__name__)`` and passes turn data as ``extra``::

    log.info("first audio", extra={"turn_id": turn.id, "stage": "tts", "latency_ms": 412.0})

Under journald these become the fields ``TURN_ID``, ``STAGE`` and ``LATENCY_MS`` (so
``journalctl -u talkerd TURN_ID=42`` shows one turn); on stderr they are appended to the line.
"""
from __future__ import annotations

import collections
import logging
import os
import sys
from collections.abc import Callable
from typing import IO

from .errors import ConfigError

JOURNAL_FIELDS = {"turn_id": "TURN_ID", "stage": "STAGE", "latency_ms": "LATENCY_MS"}
"""``extra`` key → journald field."""
SYSLOG_IDENTIFIER = "talkerd"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def stderr_is_journal(environ: dict[str, str] | None = None, fd: int = 2) -> bool:
    """True when ``fd`` is the journal stream systemd connected us to.

    systemd sets JOURNAL_STREAM to the stream's ``device:inode``; comparing it with the descriptor
    tells a service's own stderr apart from a child process or a redirected stderr that inherited
    the variable.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class JournalFields(logging.Filter):
    """Copies ``turn_id``/``stage``/``latency_ms`` from ``extra`` into upper-case journal fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, field in JOURNAL_FIELDS.items():
            value = getattr(record, key, None)
            if value is not None:
                setattr(record, field, value)
        return True


class ConciseFormatter(logging.Formatter):
    """``12:00:01.234 INFO talkerd.listen.asr: final text [turn=3 stage=asr latency_ms=120.5]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [f"{key}={getattr(record, key)}" for key in JOURNAL_FIELDS if getattr(record, key, None) is not None]
        if not fields:
            return text
        first, newline, rest = text.partition("\n")  # keep the fields on the message line, not after a traceback
        return f"{first} [{' '.join(fields)}]{newline}{rest}"


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    if name not in _LEVELS:
        raise ConfigError(f"log level {level!r}: expected one of {', '.join(_LEVELS)}")
    return getattr(logging, name)


class RecentProblems(logging.Handler):
    """Keeps the last warnings and errors of the ``talkerd`` loggers for ``talkerctl status``."""

    def __init__(self, size: int = 10) -> None:
        super().__init__(logging.WARNING)
        self._records: collections.deque[dict] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append({"at": round(record.created, 3), "level": record.levelname.lower(),
                              "logger": record.name, "message": record.getMessage()})

    def recent(self) -> list[dict]:
        """Oldest first."""
        return list(self._records)


def setup_logging(
    level: int | str = "INFO",
    *,
    stream: IO[str] | None = None,
    journal_sender: Callable[..., object] | None = None,
) -> logging.Handler:
    """Install the root handler (replacing one installed before) and return it.

    journald when stderr is the service's journal stream and systemd-python is importable, else
    ``stream`` (default stderr). ``journal_sender`` replaces ``systemd.journal.send``.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_talkerd", False)]:
        root.removeHandler(old)
        old.close()
    journald = stream is None and stderr_is_journal()
    handler = _journal_handler(journal_sender) if journald else None
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(ConciseFormatter())
    handler._talkerd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(_level(level))
    if journald and isinstance(handler, logging.StreamHandler):
        logging.getLogger(__name__).warning("systemd-python is not installed: journal entries carry no TURN_ID/STAGE/LATENCY_MS fields")
    return handler


def _journal_handler(sender: Callable[..., object] | None) -> logging.Handler | None:
    try:
        from systemd import journal
    except ImportError:
        # Under systemd without the library: stderr still reaches the journal, only the fields are lost.
        return None
    handler = journal.JournalHandler(sender_function=sender or journal.send, SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
    handler.addFilter(JournalFields())
    handler.setFormatter(logging.Formatter("%(message)s"))  # journald stores time, level and logger itself
    return handler
