"""The control protocol shared by the daemon's server and its clients: JSON Lines over a Unix socket.

A request is one line, ``{"id": 1, "method": "status", "params": {}}``; its reply is one line,
``{"id": 1, "result": ...}`` or ``{"id": 1, "error": {"code": "...", "message": "..."}}``. ``id`` is a
number, a string or null and is echoed; ``params`` is an object and may be left out. A request whose id
could not be read (not JSON, too long) is answered with ``"id": null``.
"""
from __future__ import annotations

import grp
import json
import math
import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import ConfigError, ExitCode, TalkerError

MAX_LINE_BYTES = 64 * 1024
"""Longest accepted request line; longer ones get ``request_too_large`` and are skipped."""
MAX_REPLY_BYTES = 16 * 1024 * 1024
"""Longest reply a client accepts (a status snapshot is a few KiB)."""
WATCH_IDLE_S = 24 * 3600.0
"""A watch waits this long for the next event (a quiet kiosk at night) before it says so."""
FALLBACK_SOCKET = Path("/run/talkerd/control.sock")
"""The socket's place when ``$XDG_RUNTIME_DIR`` is unset (system services on the kiosk)."""


class ErrorCode:
    """The error codes of the protocol itself; handlers add the codes of their ``TalkerError``s."""

    BAD_REQUEST = "bad_request"  # not JSON, not an object, no method, params not an object
    UNKNOWN_METHOD = "unknown_method"
    TOO_LARGE = "request_too_large"
    BUSY = "busy"  # too many clients, or too many requests in flight on one connection
    PERMISSION_DENIED = "permission_denied"  # a restricted method from a peer outside the socket's group
    INTERNAL = "internal"  # a handler failed unexpectedly; the daemon's log has the traceback


class BadRequest(Exception):
    """A request line that cannot be dispatched; carries the reply's id, code and message."""

    def __init__(self, request_id: object, code: str, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.code = code
        self.message = message


class NoDaemon(TalkerError):
    """Nothing listens on the control socket: the socket is missing or refuses connections."""

    code = "no_daemon"
    exit_code = ExitCode.NO_DAEMON


class DaemonError(TalkerError):
    """The daemon answered a request with an error; ``code`` is the daemon's."""

    code = "daemon_error"
    exit_code = ExitCode.FAILURE


class NotAnswering(TalkerError):
    """The daemon is there but does not answer: no reply in time, or the connection dropped."""

    code = "not_answering"
    exit_code = ExitCode.NO_DAEMON


class ClientError(TalkerError):
    """The request could not be completed: no permission, no reply in time, or a garbled reply."""

    code = "control_client"
    exit_code = ExitCode.FAILURE


def default_socket_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/talkerd/control.sock``, or ``/run/talkerd/control.sock`` without a session."""
    runtime = (os.environ if environ is None else environ).get("XDG_RUNTIME_DIR")
    return Path(runtime) / "talkerd" / "control.sock" if runtime else FALLBACK_SOCKET


def resolve_socket_path(path: os.PathLike | str | None) -> Path:
    """Expand environment variables in a configured socket path.

    The configured default names ``$XDG_RUNTIME_DIR``, which a system service does not have; there the
    system runtime directory ``/run`` takes its place, so the default becomes ``/run/talkerd/...``.
    """
    if path is None:
        return default_socket_path()
    text = os.path.expandvars(os.fspath(path))
    for variable in ("${XDG_RUNTIME_DIR}", "$XDG_RUNTIME_DIR"):
        if variable in text:
            # Anything before the variable is a config folder prepended to a "relative" path: drop it.
            text = "/run" + text.split(variable, 1)[1]
    if "$" in text:
        raise ConfigError(f"control.socket: {path} names an environment variable that is not set")
    return Path(text).expanduser()


def encode(message: Mapping[str, object]) -> bytes:
    """One JSON Lines record (raises TypeError/ValueError for values JSON cannot hold)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def error_reply(request_id: object, code: str, message: str) -> bytes:
    return encode({"id": request_id, "error": {"code": code, "message": message}})


MAX_NESTING = 32
"""Deepest nesting of arrays and objects accepted in a request (no method needs more than 3)."""


class _NotFinite(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: JSON allows it, a reply could not echo it
        raise _NotFinite(text)
    return value


def _no_constant(name: str) -> float:
    raise _NotFinite(name)  # NaN, Infinity, -Infinity: Python's extension, not JSON


def _nesting(text: str) -> int:
    """How deep the brackets go, outside strings: checked before parsing, which recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_request(line: bytes) -> tuple[object, str, dict]:
    """Split a request line into (id, method, params); raise ``BadRequest`` naming what is wrong."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(None, ErrorCode.BAD_REQUEST, "request is not valid UTF-8") from None
    if _nesting(text) > MAX_NESTING:
        raise BadRequest(None, ErrorCode.BAD_REQUEST, f"request is nested more than {MAX_NESTING} levels deep")
    try:
        request = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise BadRequest(None, ErrorCode.BAD_REQUEST, f"request holds a number JSON replies cannot carry: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(None, ErrorCode.BAD_REQUEST, f"request is not valid JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise BadRequest(None, ErrorCode.BAD_REQUEST, f"request is not usable JSON: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest(None, ErrorCode.BAD_REQUEST, f"request must be a JSON object, not {_json_type(request)}")
    request_id = request.get("id")
    if isinstance(request_id, bool) or not (request_id is None or isinstance(request_id, (str, int, float))):
        raise BadRequest(None, ErrorCode.BAD_REQUEST, "request id must be a number, a string or null")
    unknown = sorted(set(request) - {"id", "method", "params"})
    if unknown:
        raise BadRequest(request_id, ErrorCode.BAD_REQUEST, f"unknown request field(s): {', '.join(unknown)}")
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise BadRequest(request_id, ErrorCode.BAD_REQUEST, 'request needs a "method" string')
    params = request.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest(request_id, ErrorCode.BAD_REQUEST, f'"params" must be a JSON object, not {_json_type(params)}')
    return request_id, method, params


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null")


class ControlClient:
    """A connection to the daemon's control socket; ``call`` sends one request and waits for its reply."""

    def __init__(self, path: os.PathLike | str, *, timeout_s: float = 60.0, connect_timeout_s: float = 3.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._next_id = 1

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._connect_timeout_s)
        try:
            sock.connect(os.fspath(self.path))
        except (FileNotFoundError, NotADirectoryError):
            sock.close()
            raise NoDaemon(f"no control socket at {self.path}: is talkerd running? (--socket or TALKERD_SOCKET name another)") from None
        except ConnectionRefusedError:
            sock.close()
            raise NoDaemon(f"nothing is listening on {self.path}: talkerd is not running (the socket file is left over)") from None
        except PermissionError:
            sock.close()
            raise ClientError(f"no permission to use {self.path}: this user must be in its group {_group_of(self.path)}", code="permission_denied") from None
        except (TimeoutError, BlockingIOError):
            sock.close()
            raise NotAnswering(f"talkerd on {self.path} accepts no connections (busy or hung)", code="timeout") from None
        except OSError as exc:
            sock.close()
            raise ClientError(f"cannot connect to {self.path}: {exc.strerror or exc}") from None
        self._sock = sock

    def call(self, method: str, params: Mapping[str, object] | None = None, *, timeout_s: float | None = None) -> object:
        """Send one request; return its result, or raise ``DaemonError`` with the daemon's code."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        request_id = self._next_id
        self._next_id += 1
        self._sock.settimeout(self._connect_timeout_s)
        try:
            self._sock.sendall(encode({"id": request_id, "method": method, "params": dict(params or {})}))
        except OSError as exc:
            raise NotAnswering(f"cannot send to talkerd on {self.path}: {exc.strerror or exc}", code="no_reply") from None
        reply = self._read_reply(request_id, self.timeout_s if timeout_s is None else timeout_s)
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise DaemonError(str(error.get("message", "(no message)")), code=str(error.get("code", DaemonError.code)))
        if "result" not in reply:
            raise ClientError(f"talkerd sent a reply without result or error: {reply!r}", code="bad_reply")
        return reply["result"]

    def watch(self, method: str = "watch") -> Iterator[dict]:
        """Subscribe with ``method``; yields the daemon's events as they come (until the connection ends)."""
        request_id = self._next_id
        self.call(method)
        while True:
            line = self._read_line(time.monotonic() + WATCH_IDLE_S, WATCH_IDLE_S)
            try:
                message = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ClientError(f"talkerd sent an event that is not JSON: {line[:200]!r}", code="bad_reply") from None
            if isinstance(message, dict) and message.get("id") == request_id and isinstance(message.get("event"), dict):
                yield message["event"]

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read_reply(self, request_id: int, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._read_line(deadline, timeout_s)
            try:
                reply = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ClientError(f"talkerd sent a reply that is not JSON: {line[:200]!r}", code="bad_reply") from None
            if not isinstance(reply, dict):
                raise ClientError(f"talkerd sent a reply that is not an object: {line[:200]!r}", code="bad_reply")
            # A reply with a null id answers a request the server could not read (e.g. too long).
            if reply.get("id") == request_id or (reply.get("id") is None and "error" in reply):
                return reply

    def _read_line(self, deadline: float, timeout_s: float) -> bytes:
        assert self._sock is not None
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise ClientError(f"talkerd sent a reply longer than {MAX_REPLY_BYTES} bytes", code="bad_reply")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotAnswering(f"no reply from talkerd within {timeout_s:g} s (--timeout allows longer)", code="timeout")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue  # the deadline check above reports it
            except OSError as exc:
                raise NotAnswering(f"lost the connection to talkerd: {exc.strerror or exc}", code="no_reply") from None
            if not chunk:
                raise NotAnswering("talkerd closed the connection before replying (did it stop?)", code="no_reply")
            self._buffer += chunk


def call(path: os.PathLike | str, method: str, params: Mapping[str, object] | None = None, *, timeout_s: float = 60.0) -> object:
    """One request on a fresh connection."""
    with ControlClient(path, timeout_s=timeout_s) as client:
        return client.call(method, params)


def _group_of(path: Path) -> str:
    try:
        gid = os.stat(path).st_gid
        return repr(grp.getgrgid(gid).gr_name)
    except (OSError, KeyError):
        return "(unknown)"
