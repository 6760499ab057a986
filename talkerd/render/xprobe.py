"""Is there an X server we may draw on? Asked over the X11 protocol itself, before any window call.

OpenCV's HighGUI aborts the whole process (SIGABRT, not an exception) when it cannot open the
display, so the daemon must know beforehand. ``probe_display`` connects to the server named by
``DISPLAY`` and performs the X11 connection setup (with the MIT-MAGIC-COOKIE-1 from the Xauthority
file when there is one): only a server that accepts the connection counts as a display.

``read_screen`` reads pixels back from the server (GetImage on the root window): how the window sink
checks that its window really was painted.
"""
from __future__ import annotations

import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


class _Refused(Exception):
    """The server answered the connection setup with a refusal (its text is the message)."""


def _setup(display: str) -> tuple[socket.socket, bytes]:
    """A connection to ``display`` that passed the X11 setup, and the setup reply's body.
    Raises ValueError (malformed DISPLAY), _Refused or OSError."""
    match = _DISPLAY.match(display)
    if match is None:
        raise ValueError(f"DISPLAY={display!r} is not of the form [host]:number[.screen]")
    host, number = match["host"], int(match["number"])
    cookie = _read_xauthority(match["number"]) if host in ("", "unix", "localhost") else None
    name, data = (_COOKIE, cookie) if cookie else (b"", b"")
    request = struct.pack("<BxHHHHxx", ord("l"), 11, 0, len(name), len(data)) + _pad(name) + _pad(data)
    sock = _connect(host, number)
    try:
        sock.sendall(request)
        head = _recv(sock, 8)
        if len(head) < 8:
            raise _Refused(f"X server {display} closed the connection")
        status, reason_len = head[0], head[1]
        (extra,) = struct.unpack_from("<H", head, 6)
        body = _recv(sock, extra * 4)
        if status != 1:
            text = body[:reason_len].decode("latin-1", "replace").strip()
            raise _Refused(f"X server {display} refused the connection: {text or 'authentication required'}")
    except BaseException:
        sock.close()
        raise
    return sock, body


def probe_display(display: str | None = None) -> DisplayStatus:
    """Check that the X server named by ``display`` (default: ``$DISPLAY``) accepts a connection."""
    display = os.environ.get("DISPLAY", "") if display is None else display
    if not display:
        return DisplayStatus(False, "", "DISPLAY is not set")
    try:
        sock, body = _setup(display)
    except ValueError as exc:
        return DisplayStatus(False, display, str(exc))
    except _Refused as exc:
        return DisplayStatus(False, display, str(exc))
    except OSError as exc:
        return DisplayStatus(False, display, f"no X server answers on {display} ({exc.strerror or exc})")
    sock.close()
    screen = _first_screen(body)
    size = f" (screen {screen[0]}x{screen[1]})" if screen else ""
    return DisplayStatus(True, display, f"X server {display} accepts connections{size}", screen)


def _root_window(body: bytes) -> tuple[int, int, int]:
    """Screen 0's root window id, and the bits per pixel and byte order of its depth's images."""
    (vendor_len,) = struct.unpack_from("<H", body, 16)
    formats, byte_order = body[21], body[22]
    offset = 32 + vendor_len + (-vendor_len % 4)
    depth = body[offset + 8 * formats + 38]
    bits = {body[offset + 8 * i]: body[offset + 8 * i + 1] for i in range(formats)}
    (root,) = struct.unpack_from("<I", body, offset + 8 * formats)
    return root, bits.get(depth, 0) if depth >= 24 else 0, byte_order


def read_screen(width: int, height: int, display: str | None = None) -> np.ndarray | None:
    """The top-left ``width`` x ``height`` pixels of the screen as BGR, read from the X server;
    None when it cannot be read (no server, or a screen that is not 24-bit true colour)."""
    display = os.environ.get("DISPLAY", "") if display is None else display
    try:
        sock, body = _setup(display)
    except (ValueError, _Refused, OSError):
        return None
    with sock:
        try:
            root, bits_per_pixel, byte_order = _root_window(body)
            if bits_per_pixel != 32 or byte_order != 0:  # 24-bit depth in 32-bit LSB-first pixels only
                return None
            sock.sendall(struct.pack("<BBHIhhHHI", 73, 2, 5, root, 0, 0, width, height, 0xFFFFFFFF))  # GetImage, ZPixmap
            head = _recv(sock, 32)
            if len(head) < 32 or head[0] != 1:
                return None
            (length,) = struct.unpack_from("<I", head, 4)
            data = _recv(sock, length * 4)
        except (OSError, struct.error, IndexError):
            return None
    if len(data) < width * height * 4:
        return None
    return np.frombuffer(data, np.uint8)[: width * height * 4].reshape(height, width, 4)[:, :, :3].copy()
