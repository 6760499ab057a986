"""The installer's side of the conversation with a running daemon: load the active release, and did it?

The daemon answers ``engines.reload`` with the release it now runs, or with ``restarting`` (it exits
and systemd starts it again on the release). Either way the trial passes only when the daemon then
runs the release and no component that was working before is unavailable after it (a release whose
LLM or recogniser does not load fails its trial like one whose engines do not).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Dict, Optional

from ..errors import TalkerError

log = logging.getLogger(__name__)

POLL_S = 0.5


def _engines(socket: Path, timeout_s: float) -> dict:
    from ..control.protocol import ControlClient

    with ControlClient(socket, timeout_s=timeout_s) as client:
        shown = client.call("engines", {})
    release = shown.get("release") if isinstance(shown, dict) else None
    return release if isinstance(release, dict) else {}


def tell_daemon(socket: Optional[Path], timeout_s: float) -> Optional[str]:
    """Ask a running daemon to load the active release. None when it did (or no daemon runs: it
    reads the release at its next start); otherwise why not."""
    if socket is None:
        return None
    from ..control.protocol import ControlClient, DaemonError, NoDaemon

    try:
        before = _engines(socket, timeout_s).get("unavailable", {})
        with ControlClient(socket, timeout_s=timeout_s) as client:
            result = client.call("engines.reload", {})
    except NoDaemon:
        log.info("no daemon on %s: it loads the active release when it starts", socket)
        return None
    except DaemonError as exc:
        return f"the daemon could not load the release: {exc.message} [{exc.code}]"
    except TalkerError as exc:
        return f"the daemon did not confirm the release: {exc.message}"
    result = result if isinstance(result, dict) else {}
    if result.get("restarting"):
        log.info("daemon restarts to load release %s: %s", result.get("release"), result.get("why"))
        return wait_for_release(socket, result.get("release"), before, timeout_s)
    return lost_components(socket, result.get("release"), before, timeout_s)


def lost_components(socket: Path, release: Optional[int], before: Dict[str, str], timeout_s: float) -> Optional[str]:
    """Why the daemon on ``release`` is worse off than ``before`` (None: it is not)."""
    try:
        now = _engines(socket, timeout_s).get("unavailable", {})
    except TalkerError as exc:
        return f"the daemon did not answer after loading release {release}: {exc.message}"
    lost = {name: why for name, why in now.items() if name not in before}
    if lost:
        return f"with release {release} the daemon lost " + "; ".join(f"{n} ({w})" for n, w in sorted(lost.items()))
    log.info("daemon runs release %s", release)
    return None


def wait_for_release(socket: Path, release: Optional[int], before: Dict[str, str], timeout_s: float) -> Optional[str]:
    """After the daemon restarted to load ``release``: None once it runs it as well as before, else why not."""
    deadline = time.monotonic() + timeout_s
    seen = "no answer"
    while time.monotonic() < deadline:
        try:
            shown = _engines(socket, 5.0)
            seen = f"it runs release {shown.get('active')}" if shown.get("active") else "it is still loading"
            if shown.get("active") == release:
                return lost_components(socket, release, before, timeout_s)
        except TalkerError as exc:
            seen = exc.message
        time.sleep(POLL_S)
    return f"the daemon restarted to load release {release} but did not run it within {timeout_s:g} s ({seen})"
