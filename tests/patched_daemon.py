"""The real daemon with one part made to misbehave on purpose, for the tests of what systemd sees.

    python -m tests.patched_daemon MISBEHAVIOUR run --config FILE ...

``slow-face-warm-up``  the face engine's warm-up first sleeps ``SLOW_WARM_UP_S``, then writes the
                       CLOCK_MONOTONIC time it ended (seconds) to ``$TALKERD_TEST_MARK``: READY=1 must come
                       after it.
``hang-brain``         a question containing "hang" blocks the answer worker for good: its heartbeat goes
                       stale while every other stage lives on.

Everything else is the real daemon: the misbehaviour is applied to its own classes before it starts.
"""
from __future__ import annotations

import os
import sys
import threading
import time

SLOW_WARM_UP_S = 6.0


def _slow_face_warm_up() -> None:
    from talkerd.speak.mouth_engine import FaceEngine

    real = FaceEngine.warm_up

    def slow(self) -> None:
        time.sleep(SLOW_WARM_UP_S)
        real(self)
        with open(os.environ["TALKERD_TEST_MARK"], "w") as mark:
            mark.write(repr(time.clock_gettime(time.CLOCK_MONOTONIC)))

    FaceEngine.warm_up = slow


def _hang_brain() -> None:
    from talkerd.answer.answerer import Answerer

    real = Answerer.reply

    def reply(self, question: str, **kwargs):
        if "hang" in question:
            threading.Event().wait()  # forever, like a stage stuck in a native call
        return real(self, question, **kwargs)

    Answerer.reply = reply


MISBEHAVIOURS = {"slow-face-warm-up": _slow_face_warm_up, "hang-brain": _hang_brain}


def main() -> int:
    name, *argv = sys.argv[1:]
    MISBEHAVIOURS[name]()
    from talkerd.cli import main as talkerd_main

    return talkerd_main(argv)


if __name__ == "__main__":
    sys.exit(main())
