"""Wait until an X server accepts clients: the readiness of the kiosk's X unit.

    python -m talkerd.kiosk.wait_for_x [--display :0] [--timeout 20] [--interval 0.1]

An X socket file can exist long before the server answers (or be left over by a crashed server), so
readiness is an X11 connection setup that succeeds, with the cookie in ``$XAUTHORITY``
(``talkerd.render.xprobe``, the same check the daemon makes before opening its window).

Exit codes: 0 the server accepts clients; 1 it did not within the timeout (the last reason is
printed); 2 usage.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..errors import ExitCode
from ..render.xprobe import DisplayStatus, probe_display


def wait_for_display(display: str, timeout_s: float, interval_s: float) -> DisplayStatus:
    """Probe ``display`` until it is usable or ``timeout_s`` has passed; the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = probe_display(display)
        if status.usable or time.monotonic() >= deadline:
            return status
        time.sleep(interval_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkerd-wait-for-x", description="Wait until an X server accepts clients.")
    parser.add_argument("--display", default=os.environ.get("DISPLAY", ":0"), help="the X display (default $DISPLAY, else :0)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait (default 20)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between attempts (default 0.1)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    if args.timeout < 0 or args.interval <= 0:
        print("talkerd-wait-for-x: --timeout must be >= 0 and --interval > 0", file=sys.stderr)
        return ExitCode.USAGE
    status = wait_for_display(args.display, args.timeout, args.interval)
    if status.usable:
        print(status.reason)
        return ExitCode.OK
    print(f"talkerd-wait-for-x: not ready after {args.timeout:g} s: {status.reason}", file=sys.stderr)
    return ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
