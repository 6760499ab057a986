"""sd_notify messages received on a real Unix datagram socket named in NOTIFY_SOCKET, the watchdog that
is fed only by fresh stage heartbeats, and the journald/stderr logging."""
from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

import pytest

from talkerd import systemd as sd
from talkerd.errors import ConfigError
from talkerd.logging_setup import setup_logging

HANG_GUARD_S = 20.0  # only stops a broken implementation from hanging the suite
BACKENDS = [pytest.param(True, id="systemd-python"), pytest.param(False, id="datagram")]


class NotifySocket:
    """The service manager's end: a datagram socket that also receives each sender's pid."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(HANG_GUARD_S)

    def receive(self, timeout_s: float = HANG_GUARD_S) -> tuple[dict[str, str], int]:
        """The next message as fields, and the pid of the process that sent it."""
        self.sock.settimeout(timeout_s)
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(struct.unpack("iII", cdata)[0] for level, kind, cdata in ancillary
                   if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        return fields, pid

    def drain(self) -> int:
        count = 0
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(4096)
                count += 1
        except BlockingIOError:
            return count
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="tsd-"))
    path = str(folder / "notify")
    receiver = NotifySocket(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield receiver
    receiver.close()
    shutil.rmtree(folder, ignore_errors=True)


def make_notifier(library: bool) -> sd.Notifier:
    if library and sd._sd_daemon is None:
        pytest.skip("systemd-python is not installed")
    notifier = sd.Notifier(use_library=library)
    assert notifier.backend == ("systemd-python" if library else "datagram")
    return notifier


@pytest.mark.parametrize("library", BACKENDS)
def test_lifecycle_messages_arrive_from_this_process(notify, library):
    notifier = make_notifier(library)
    assert notifier.enabled
    assert notifier.status("loading llm")
    assert notify.receive() == ({"STATUS": "loading llm"}, os.getpid())
    assert notifier.extend_timeout(90)
    assert notify.receive()[0] == {"EXTEND_TIMEOUT_USEC": "90000000"}
    assert notifier.ready("ready; 0 turns\nsecond line")
    assert notify.receive()[0] == {"READY": "1", "STATUS": "ready; 0 turns second line"}
    assert notifier.watchdog()
    assert notify.receive()[0] == {"WATCHDOG": "1"}
    assert notifier.stopping()
    assert notify.receive()[0] == {"STOPPING": "1"}


@pytest.mark.parametrize("library", BACKENDS)
def test_reloading_carries_the_monotonic_clock(notify, library):
    notifier = make_notifier(library)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields, _ = notify.receive()
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after
    notifier.ready()
    assert notify.receive()[0] == {"READY": "1"}


@pytest.mark.parametrize("library", BACKENDS)
def test_abstract_notify_socket(monkeypatch, library):
    name = f"talkerd-test-{os.getpid()}-{library}"
    receiver = NotifySocket("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert make_notifier(library).ready()
        assert receiver.receive()[0] == {"READY": "1"}
    finally:
        receiver.close()


@pytest.mark.parametrize("library", BACKENDS)
def test_outside_systemd_nothing_is_sent_and_nothing_fails(monkeypatch, library):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = make_notifier(library)
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


@pytest.mark.parametrize("library", BACKENDS)
def test_a_broken_notify_socket_is_logged_once_not_raised(monkeypatch, caplog, library):
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/talkerd/notify")
    notifier = make_notifier(library)
    with caplog.at_level(logging.WARNING, logger="talkerd.systemd"):
        assert notifier.ready() is False
        assert notifier.status("x") is False
    assert len([r for r in caplog.records if "cannot notify systemd" in r.getMessage()]) == 1


def test_watchdog_interval_follows_watchdog_usec_and_pid(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sd.Notifier.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sd.Notifier.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sd.Notifier.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sd.Notifier.watchdog_interval() is None  # meant for another process
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "soon")
    assert sd.Notifier.watchdog_interval() is None


class ManualClock:
    """Stands in for time.monotonic so staleness is decided by the test, not by scheduling."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_pings_only_while_every_stage_is_fresh(notify, caplog):
    clock = ManualClock()
    dog = sd.Watchdog(sd.Notifier(), stale_after_s=5.0, clock=clock)
    dog.register("listener")
    dog.register("speech")
    assert dog.check() == [] and dog.ping()
    assert notify.receive()[0] == {"WATCHDOG": "1"}
    clock.now += 4.0
    dog.heartbeat("listener")
    clock.now += 2.0  # speech: 6 s without a heartbeat; listener: 2 s
    assert dog.check() == ["speech"]
    with caplog.at_level(logging.ERROR, logger="talkerd.systemd"):
        assert dog.ping() is False
        assert dog.ping() is False
    assert [r.getMessage() for r in caplog.records].count(
        "watchdog withheld: stage(s) without a heartbeat for over 5.0 s: speech") == 1
    assert notify.drain() == 0  # nothing was sent while speech was stale
    assert dog.misses == 2  # each withheld ping is counted (the fleet's talkerd_watchdog_misses_total)
    dog.heartbeat("speech", at=clock.now - 1.0)  # a heartbeat reported with the time it happened
    assert dog.ping()
    assert notify.receive()[0] == {"WATCHDOG": "1"}
    dog.heartbeat("listener", at=clock.now - 9.0)
    assert dog.check() == ["listener"]
    dog.unregister("listener")  # a stage the daemon carries on without no longer counts
    assert dog.check() == [] and dog.stages == ["speech"]
    assert dog.misses == 2  # pings that were sent are not misses


def test_watchdog_thread_stops_feeding_when_a_stage_hangs(notify, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # systemd wants a ping every 0.2 s
    dog = sd.Watchdog(sd.Notifier(), stale_after_s=0.5)
    dog.register("playout")
    alive = threading.Event()
    alive.set()
    stop = threading.Event()

    def stage() -> None:
        while not stop.is_set():
            if alive.is_set():
                dog.heartbeat("playout")
            stop.wait(0.05)

    worker = threading.Thread(target=stage)
    worker.start()
    assert dog.start()
    try:
        for _ in range(3):
            assert notify.receive()[0] == {"WATCHDOG": "1"}
        alive.clear()  # the stage hangs
        deadline = time.monotonic() + HANG_GUARD_S
        while dog.check() != ["playout"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dog.check() == ["playout"]
        time.sleep(0.25)  # let a ping that had checked just before the stage went stale land
        notify.drain()
        with pytest.raises(TimeoutError):
            notify.receive(timeout_s=1.0)  # five ping periods: no WATCHDOG=1 for a hung stage
        alive.set()  # the stage recovers
        assert notify.receive()[0] == {"WATCHDOG": "1"}
    finally:
        dog.stop()
        stop.set()
        worker.join()


def test_no_watchdog_thread_without_watchdog_usec(notify):
    dog = sd.Watchdog(sd.Notifier(), stale_after_s=1.0)
    assert dog.start() is False
    dog.stop()


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_stderr_logging_is_concise_and_carries_turn_fields(restore_logging, monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    setup_logging("info", stream=stream)
    log = logging.getLogger("talkerd.test")
    log.debug("hidden")
    log.info("first audio", extra={"turn_id": 3, "stage": "tts", "latency_ms": 412.5})
    log.warning("plain")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("INFO talkerd.test: first audio [turn_id=3 stage=tts latency_ms=412.5]")
    assert lines[1].endswith("WARNING talkerd.test: plain")
    setup_logging("WARNING", stream=stream)  # a second call replaces the handler, no duplicates
    log.warning("once")
    assert stream.getvalue().count("once") == 1


def test_journal_gets_structured_fields_when_stderr_is_the_journal_stream(restore_logging, monkeypatch):
    pytest.importorskip("systemd.journal")
    st = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    sent: list[tuple[str, dict]] = []

    def journal_send(MESSAGE, **fields):  # noqa: N803 (systemd.journal.send's own signature)
        """Stands in for systemd.journal.send: no journald runs on this machine (PID 1 is not systemd)."""
        sent.append((MESSAGE, fields))

    handler = setup_logging("INFO", journal_sender=journal_send)
    assert type(handler).__name__ == "JournalHandler"
    logging.getLogger("talkerd.pipeline").info("first audio", extra={"turn_id": 3, "stage": "tts", "latency_ms": 412.5})
    (message, fields), = sent
    assert message == "first audio"
    assert (fields["TURN_ID"], fields["STAGE"], fields["LATENCY_MS"]) == (3, "tts", 412.5)
    assert fields["PRIORITY"] == "6" and fields["SYSLOG_IDENTIFIER"] == "talkerd" and fields["LOGGER"] == "talkerd.pipeline"
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")  # inherited, not our stderr
    assert type(setup_logging("INFO", journal_sender=journal_send)).__name__ == "StreamHandler"


def test_a_bad_log_level_is_a_clear_error(restore_logging):
    with pytest.raises(ConfigError, match="log level 'loud'"):
        setup_logging("loud", stream=io.StringIO())
