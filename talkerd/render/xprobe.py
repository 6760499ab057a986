"""Is there an X server we may draw on? Asked over the X11 protocol itself, before any window call.

OpenCV's HighGUI aborts the whole process (SIGABRT, not an exception) when it cannot open the
display, so the daemon must know beforehand. ``probe_display`` connects to the server named by
``DISPLAY`` and performs the X11 connection setup (with the MIT-MAGIC-COOKIE-1 from the Xauthority
file when there is one): only a server that accepts the connection counts as a display.
"""
from __future__ import annotations

import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_DISPLAY = re.compile(r"^(?P<host>[^:/]*)(?:/unix)?:(?P<number>\d+)(?:\.(?P<screen>\d+))?$")
_COOKIE = b"MIT-MAGIC-COOKIE-1"
_FAMILY_LOCAL, _FAMILY_WILD = 256, 65535
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class DisplayStatus:
    """The answer of one probe."""

    usable: bool
    """True when the X server accepted a connection."""
    display: str
    """The DISPLAY value probed ('' when unset)."""
    reason: str
    """Why it is or is not usable, for logs and status."""
    screen: tuple[int, int] | None = None
    """Width and height in pixels of the display's first screen, when it answered."""


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _read_xauthority(number: str) -> bytes | None:
    """The MIT-MAGIC-COOKIE-1 for display ``number`` on this host, from the Xauthority file."""
    path = Path(os.environ.get("XAUTHORITY") or Path.home() / ".Xauthority")
    try:
        data = path.read_bytes()
    except OSError:
        return None
    hostname = socket.gethostname().encode()
    found, pos = None, 0
    while pos + 2 <= len(data):
        (family,) = struct.unpack_from(">H", data, pos)
        pos += 2
        fields = []
        for _ in range(4):
            if pos + 2 > len(data):
                return found
            (length,) = struct.unpack_from(">H", data, pos)
            fields.append(data[pos + 2 : pos + 2 + length])
            pos += 2 + length
        address, num, name, cookie = fields
        if name != _COOKIE or num not in (number.encode(), b""):
            continue
        if family == _FAMILY_WILD or (family == _FAMILY_LOCAL and address == hostname):
            return cookie
        found = found or cookie
    return found


def _connect(host: str, number: int) -> socket.socket:
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        errors = []
        # Linux X servers also listen on an abstract socket; try it when the file is missing.
        for address in (path, "\0" + path):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT_S)
            try:
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                errors.append(exc)
        raise errors[0]
    return socket.create_connection((host, 6000 + number), timeout=TIMEOUT_S)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _first_screen(body: bytes) -> tuple[int, int] | None:
    """Width and height of screen 0 from the body of a successful X11 setup reply."""
    try:
        (vendor_len,) = struct.unpack_from("<H", body, 16)
        formats = body[21]
        offset = 32 + vendor_len + (-vendor_len % 4) + 8 * formats
        width, height = struct.unpack_from("<HH", body, offset + 20)
    except (struct.error, IndexError):
        return None
    return (width, height)


def probe_display(display: str | None = None) -> DisplayStatus:
    """Check that the X server named by ``display`` (default: ``$DISPLAY``) accepts a connection."""
    display = os.environ.get("DISPLAY", "") if display is None else display
    if not display:
        return DisplayStatus(False, "", "DISPLAY is not set")
    match = _DISPLAY.match(display)
    if match is None:
        return DisplayStatus(False, display, f"DISPLAY={display!r} is not of the form [host]:number[.screen]")
    host, number = match["host"], int(match["number"])
    cookie = _read_xauthority(match["number"]) if host in ("", "unix", "localhost") else None
    name, data = (_COOKIE, cookie) if cookie else (b"", b"")
    request = struct.pack("<BxHHHHxx", ord("l"), 11, 0, len(name), len(data)) + _pad(name) + _pad(data)
    try:
        with _connect(host, number) as sock:
            sock.sendall(request)
            head = _recv(sock, 8)
            if len(head) < 8:
                return DisplayStatus(False, display, f"X server {display} closed the connection")
            status, reason_len = head[0], head[1]
            (extra,) = struct.unpack_from("<H", head, 6)
            body = _recv(sock, extra * 4)
            if status == 1:
                screen = _first_screen(body)
                size = f" (screen {screen[0]}x{screen[1]})" if screen else ""
                return DisplayStatus(True, display, f"X server {display} accepts connections{size}", screen)
            text = body[:reason_len].decode("latin-1", "replace").strip()
            return DisplayStatus(False, display, f"X server {display} refused the connection: {text or 'authentication required'}")
    except OSError as exc:
        return DisplayStatus(False, display, f"no X server answers on {display} ({exc.strerror or exc})")
