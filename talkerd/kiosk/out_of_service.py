"""The "out of service" screen: what the kiosk shows when talkerd cannot be brought back.

    python -m talkerd.kiosk.out_of_service [--for SECONDS] [--title TEXT] [--message TEXT]

``talkerd.service`` names ``talkerd-out-of-service.service`` in ``OnFailure=``: once systemd has given
up restarting the daemon (its start limit was hit, or it exited with a bad configuration), this
program covers the display with a plain notice instead of leaving it black, shows it for ``--for``
seconds and exits 0; the unit then starts talkerd again (a slow retry: the start limit has expired
by then). Starting talkerd by hand stops this screen at once (``Conflicts=``).

Without a usable X server it waits for one (the X unit may be restarting too). Exit codes: 0 the
time is up (retry talkerd); 2 usage.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from ..errors import ComponentUnavailable, ExitCode
from ..render.xprobe import probe_display

log = logging.getLogger(__name__)

TITLE = "Out of service"
MESSAGE = "Sorry, this assistant is not working at the moment. Please ask a member of staff."
BACKGROUND = (40, 24, 16)  # BGR: dark blue, readable from across a room, not alarming
FOREGROUND = (255, 255, 255)
WINDOW_TITLE = "talkerd out of service"
REDRAW_S = 1.0
DISPLAY_RETRY_S = 5.0


def _wrap(text: str, font, scale: float, thickness: int, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    import cv2

    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and cv2.getTextSize(candidate, font, scale, thickness)[0][0] > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return lines + ([current] if current else [])


def render_screen(width: int, height: int, title: str = TITLE, message: str = MESSAGE) -> np.ndarray:
    """The notice as a BGR frame: the title large and centred, the message wrapped below it."""
    import cv2

    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    title_scale, title_thick = height / 220, max(2, height // 180)
    text_scale, text_thick = height / 600, max(1, height // 400)
    (tw, th), _ = cv2.getTextSize(title, font, title_scale, title_thick)
    y = int(height * 0.42)
    cv2.putText(frame, title, ((width - tw) // 2, y), font, title_scale, FOREGROUND, title_thick, cv2.LINE_AA)
    y += th
    for line in _wrap(message, font, text_scale, text_thick, int(width * 0.8)):
        (lw, lh), _ = cv2.getTextSize(line, font, text_scale, text_thick)
        y += int(lh * 2.2)
        cv2.putText(frame, line, ((width - lw) // 2, y), font, text_scale, FOREGROUND, text_thick, cv2.LINE_AA)
    return frame


def show_until(deadline: float, title: str, message: str) -> None:
    """Keep the notice on the display until ``deadline`` (monotonic), waiting for X when it is absent."""
    from ..render.sinks import WindowSink

    while time.monotonic() < deadline:
        status = probe_display()
        if not status.usable or status.screen is None:
            log.warning("out-of-service screen: %s; trying again in %.0f s", status.reason, DISPLAY_RETRY_S)
            time.sleep(min(DISPLAY_RETRY_S, max(0.0, deadline - time.monotonic())))
            continue
        try:
            sink = WindowSink(status.screen, fullscreen=True, title=WINDOW_TITLE)
        except ComponentUnavailable as exc:  # the server went away between the probe and the window
            log.warning("out-of-service screen: %s", exc.message)
            continue
        frame = render_screen(*status.screen, title=title, message=message)
        log.info("out-of-service screen shown on %s", sink.description)
        try:
            while time.monotonic() < deadline:
                sink.show(frame)  # redrawn so that an X server that lost the window's contents gets them back
                time.sleep(REDRAW_S)
        finally:
            sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkerd-out-of-service", description="Show the out-of-service screen.")
    parser.add_argument("--for", dest="seconds", type=float, default=600.0,
                        help="seconds to show it before exiting so that talkerd is tried again (default 600)")
    parser.add_argument("--title", default=TITLE)
    parser.add_argument("--message", default=MESSAGE)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    if args.seconds <= 0:
        print("talkerd-out-of-service: --for must be positive", file=sys.stderr)
        return ExitCode.USAGE
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    show_until(time.monotonic() + args.seconds, args.title, args.message)
    log.info("out-of-service period over: talkerd is tried again")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
