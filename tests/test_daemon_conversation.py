"""Conversations on the running daemon: real process, socket and talkerctl, real SmolLM2 and Piper.
The idle time is 15 s: each talkerctl call is a new process, which can take seconds on a busy machine."""
from __future__ import annotations

import time

from .daemon_harness import DaemonProcess, write_config

GREETING = "Hello, I'm Ava, welcome to Riverside Books."


def test_talkerctl_ends_the_conversation_and_the_idle_time_ends_the_next(tmp_path):
    config = write_config(tmp_path, {'greeting = ""': f'greeting = "{GREETING}"'},
                          extra="\n[conversation]\nidle_end_s = 15.0\ngreet = true\n")
    env = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent", "TALKERD_SOCKET": ""}
    process = DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none", env=env)
    try:
        process.wait_ready()
        first = process.call("ask", "Hello! My name is Zebulon. How are you?")
        assert first["answer"].startswith(GREETING)  # the new visitor is greeted before the answer
        assert process.call("status")["conversation"]["open"] == 1
        again = process.call("ask", "Thank you! Who are you?")
        assert GREETING not in again["answer"]

        ended = process.call("end-conversation")
        assert (ended["ended"], ended["reason"], ended["questions"]) == (1, "request", 2)
        assert process.call("status")["conversation"] == {"open": None}

        assert process.call("ask", "Hello there!")["answer"].startswith(GREETING)  # a new visitor
        deadline = time.monotonic() + 60  # guards against a hang only; the idle end takes ~15 s
        while process.call("status")["conversation"]["open"] is not None:
            assert time.monotonic() < deadline, process.log()
            time.sleep(0.5)
        assert "conversation 2 ended (idle)" in process.log()
    finally:
        assert process.stop() == 0, process.log()
