"""The control socket server: serves the JSON Lines protocol of ``control_protocol`` on a Unix socket.

Every request runs in its own thread, so a handler that takes seconds (``ask``) blocks neither other
clients nor other requests on the same connection; replies can therefore arrive out of order and are matched
by ``id``. A malformed request gets an error reply and the connection stays usable; nothing a client
sends can stop the server.

The socket is created with mode 0660 (optionally given to a group), and a second daemon never takes
over the socket of one that is running: a lock file beside the socket and a connection probe both
guard it, while a socket left behind by a crashed daemon is replaced.
"""
from __future__ import annotations

import fcntl
import grp
import logging
import os
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .peers import Peer
from .protocol import (
    MAX_LINE_BYTES,
    BadRequest,
    ErrorCode,
    encode,
    error_reply,
    parse_request,
    resolve_socket_path,
)
from ..errors import ConfigError, ExitCode, TalkerError

log = logging.getLogger(__name__)

Handler = Callable[[dict], object]
"""A control method: takes the request's params, returns a JSON-serialisable result or raises
``TalkerError`` (its code and message become the error reply)."""

@dataclass(frozen=True)
class Streaming:
    """A handler's result that goes on: ``result`` is the reply, then ``next_event(timeout)`` is polled
    and each event sent as ``{"id": …, "event": …}`` until the client leaves; ``close`` ends it."""

    result: object
    next_event: Callable[[float], dict | None]
    close: Callable[[], None]


SOCKET_MODE = 0o660
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_TICK_S = 0.25  # how often blocked loops look at the stop flag


class ControlSocketError(TalkerError):
    """The control socket cannot be created where the configuration puts it."""

    code = "control_socket"
    exit_code = ExitCode.UNAVAILABLE


class SocketInUse(ControlSocketError):
    """Another live process already serves the control socket."""

    code = "control_socket_in_use"


class _Connection:
    """One client: its socket, who it is, a write lock (replies come from many threads) and its in-flight count."""

    def __init__(self, sock: socket.socket, number: int, max_inflight: int, peer: Peer) -> None:
        self.sock = sock
        self.peer = peer
        self.number = number
        self._max_inflight = max_inflight
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def pending(self) -> int:
        """Requests of this client still running."""
        return self._pending

    def begin_request(self) -> bool:
        """Count a new request in flight; False when the client already has too many."""
        with self._pending_lock:
            if self._pending >= self._max_inflight:
                return False
            self._pending += 1
            return True

    def end_request(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    def send(self, data: bytes) -> None:
        """Write a reply; a client that does not read within the socket timeout is disconnected."""
        with self._write_lock:
            if self._closed.is_set():
                log.debug("client %d left before its reply was ready", self.number)
                return
            try:
                self.sock.sendall(data)
            except OSError as exc:  # includes the send timeout: a hung client must not hold a thread
                log.warning("control client %d dropped: cannot send a reply (%s)", self.number, exc)
                self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Disconnect; the descriptor itself is released by the reader thread (``release``)."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            # shutdown wakes the reader thread at once; closing the descriptor under its select()
            # would not, and could hand the number to another file.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.debug("control client %d already disconnected: %s", self.number, exc)

    def release(self) -> None:
        self.close()
        with self._write_lock:  # not while a reply is being written
            self.sock.close()


class ControlServer:
    """Serves ``handlers`` on a Unix socket at ``path`` from background threads.

    ``start()`` creates the socket (or raises ``ControlSocketError`` / ``ConfigError`` saying why not)
    and returns at once; ``stop()`` disconnects everyone and removes the socket file.
    """

    def __init__(
        self,
        path: os.PathLike | str,
        handlers: Mapping[str, Handler],
        group: str | None = None,
        *,
        restricted: frozenset[str] = frozenset(),
        max_line_bytes: int = MAX_LINE_BYTES,
        max_clients: int = 32,
        max_inflight: int = 8,
        send_timeout_s: float = 5.0,
        idle_timeout_s: float = 600.0,
    ) -> None:
        self.path = resolve_socket_path(path)
        self._handlers: dict[str, Handler] = {"methods": self._list_methods, **handlers}
        self._group = group
        self._restricted = restricted  # methods only root, the daemon's user and the group may call
        self._group_gid = os.getegid()  # the socket's group, once start() has set it
        self._max_line = max_line_bytes
        self._max_clients = max_clients
        self._max_inflight = max_inflight
        self._send_timeout_s = send_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._lock_fd: int | None = None
        self._inode: int | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[int, tuple[_Connection, threading.Thread]] = {}
        self._clients_lock = threading.Lock()
        self._numbers = iter(range(1, 1 << 62))

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("control server already started")
        gid = self._group_id()
        self._group_gid = os.getegid() if gid is None else gid
        self._prepare_folder(gid)
        self._lock_fd = self._take_lock()
        try:
            self._remove_stale_socket()
            self._listener = self._bind(gid)
        except BaseException:
            self._release_lock()
            raise
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, name="control-accept", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", self.path)

    def stop(self) -> None:
        """Close the socket, disconnect clients and remove the socket file (idempotent)."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None
        assert self._listener is not None
        self._listener.close()
        self._listener = None
        with self._clients_lock:
            clients = list(self._clients.values())
        for conn, _ in clients:
            conn.close()
        for _, thread in clients:
            thread.join(timeout=self._send_timeout_s)
        self._remove_own_socket()
        self._release_lock()
        log.info("control socket %s closed", self.path)

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def client_count(self) -> int:
        with self._clients_lock:
            return len(self._clients)

    # -- socket file -------------------------------------------------------------------------------

    def _group_id(self) -> int | None:
        if self._group is None:
            return None
        try:
            return grp.getgrnam(self._group).gr_gid
        except KeyError:
            raise ConfigError(f"control.group: no such group {self._group!r} (create it, or leave control.group unset)") from None

    def _prepare_folder(self, gid: int | None) -> None:
        if len(os.fsencode(self.path)) > _SUN_PATH_MAX:
            raise ControlSocketError(f"control socket path {self.path} is longer than {_SUN_PATH_MAX} bytes, the limit for Unix sockets")
        folder = self.path.parent
        if folder.is_dir():
            return
        try:
            folder.mkdir(parents=True, mode=0o750)
            if gid is not None:
                os.chown(folder, -1, gid)  # the group needs to traverse the folder to reach the socket
        except OSError as exc:
            raise ControlSocketError(f"cannot create the folder {folder} for the control socket: {exc.strerror}") from None

    def _take_lock(self) -> int:
        # The lock closes the window between "the old socket is stale" and "bind": two daemons starting
        # together would otherwise both remove the stale socket, and the later one would win silently.
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ControlSocketError(f"cannot open the lock file {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SocketInUse(f"another talkerd holds {lock_path}: the control socket {self.path} is in use") from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock; the file itself stays (no unlink race)
            self._lock_fd = None

    def _remove_stale_socket(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlSocketError(f"{self.path} exists and is not a socket; refusing to replace it")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(os.fspath(self.path))
            except (ConnectionRefusedError, FileNotFoundError):
                log.info("removing stale control socket %s (nothing answers on it)", self.path)
                os.unlink(self.path)
                return
            except (TimeoutError, BlockingIOError):
                pass  # a listener with a full backlog is alive: fall through to "in use"
            except OSError as exc:
                raise ControlSocketError(f"cannot check whether {self.path} is in use: {exc.strerror}") from None
        raise SocketInUse(f"another process is listening on the control socket {self.path}; is talkerd already running?")

    def _bind(self, gid: int | None) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.fspath(self.path))
        except OSError as exc:
            listener.close()
            raise ControlSocketError(f"cannot create the control socket {self.path}: {exc.strerror or exc}") from None
        try:
            # Permissions are set before listen(): until then every connect is refused, so no client
            # ever reaches the socket with the umask's mode.
            os.chmod(self.path, SOCKET_MODE)
            if gid is not None:
                os.chown(self.path, -1, gid)
            # Room in the queue for a whole burst of the clients it admits (and the ones it then
            # refuses with "busy"): a burst beyond the queue waits in connect() until the accept loop
            # catches up, which on a busy machine can be longer than a client waits.
            listener.listen(2 * self._max_clients)
            self._inode = os.stat(self.path).st_ino
        except OSError as exc:
            listener.close()
            os.unlink(self.path)
            hint = f" to group {self._group!r} (the daemon's user must be a member)" if gid is not None else ""
            raise ControlSocketError(f"cannot give the control socket {self.path}{hint}: {exc.strerror}") from None
        listener.setblocking(False)
        return listener

    def _remove_own_socket(self) -> None:
        try:
            if os.stat(self.path).st_ino == self._inode:  # never remove a socket another process made
                os.unlink(self.path)
        except FileNotFoundError:
            log.debug("control socket %s was already removed", self.path)

    # -- serving -------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(timeout=_TICK_S):
                    continue
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # e.g. EMFILE: keep serving the clients we have
                    log.error("control socket cannot accept a client: %s", exc)
                    time.sleep(_TICK_S)
                    continue
                self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(self._send_timeout_s)
        conn = _Connection(sock, next(self._numbers), self._max_inflight, Peer.of(sock))
        with self._clients_lock:
            full = len(self._clients) >= self._max_clients
            if not full:
                thread = threading.Thread(target=self._serve, args=(conn,), name=f"control-client-{conn.number}", daemon=True)
                self._clients[conn.number] = (conn, thread)
        if full:
            log.warning("control socket: refusing a client, %d already connected", self._max_clients)
            conn.send(error_reply(None, ErrorCode.BUSY, f"too many control clients (limit {self._max_clients})"))
            conn.release()
            return
        thread.start()

    def _serve(self, conn: _Connection) -> None:
        try:
            self._read_requests(conn)
        except OSError as exc:
            log.debug("control client %d disconnected: %s", conn.number, exc)
        finally:
            conn.release()
            with self._clients_lock:
                self._clients.pop(conn.number, None)

    def _read_requests(self, conn: _Connection) -> None:
        buffer = bytearray()
        skipping = False  # inside an oversized line: drop bytes up to its newline
        last_active = time.monotonic()
        with selectors.DefaultSelector() as selector:
            selector.register(conn.sock, selectors.EVENT_READ)
            while not (self._stopping.is_set() or conn.closed):
                if not selector.select(timeout=_TICK_S):
                    if conn.pending == 0 and time.monotonic() - last_active > self._idle_timeout_s:
                        log.info("control client %d idle for %.0f s: disconnecting", conn.number, self._idle_timeout_s)
                        return
                    continue
                chunk = conn.sock.recv(65536)
                if not chunk:
                    return
                last_active = time.monotonic()
                buffer += chunk
                while True:
                    newline = buffer.find(b"\n")
                    if newline < 0:
                        if skipping:
                            buffer.clear()
                        elif len(buffer) > self._max_line:
                            self._reply_too_large(conn)
                            buffer.clear()
                            skipping = True
                        break
                    line = bytes(buffer[:newline])
                    del buffer[: newline + 1]
                    if skipping:
                        skipping = False
                    elif len(line) > self._max_line:
                        self._reply_too_large(conn)
                    else:
                        self._dispatch(conn, line)

    def _reply_too_large(self, conn: _Connection) -> None:
        conn.send(error_reply(None, ErrorCode.TOO_LARGE, f"request line longer than {self._max_line} bytes; skipped"))

    def _dispatch(self, conn: _Connection, line: bytes) -> None:
        if not line.strip():
            return
        try:
            request_id, method, params = parse_request(line)
        except BadRequest as exc:
            conn.send(error_reply(exc.request_id, exc.code, exc.message))
            return
        handler = self._handlers.get(method)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            conn.send(error_reply(request_id, ErrorCode.UNKNOWN_METHOD, f"unknown method {method!r}; known: {known}"))
            return
        if method in self._restricted and not self._permitted(conn.peer, method):
            conn.send(error_reply(request_id, ErrorCode.PERMISSION_DENIED,
                                  f"{method!r} is restricted: only root, its own user or group members may call it"))
            return
        if not conn.begin_request():
            conn.send(error_reply(request_id, ErrorCode.BUSY, f"more than {self._max_inflight} requests in flight on this connection"))
            return
        worker = threading.Thread(
            target=self._run, args=(conn, request_id, method, handler, params), name=f"control-{method}", daemon=True
        )
        worker.start()

    def _run(self, conn: _Connection, request_id: object, method: str, handler: Handler, params: dict) -> None:
        try:
            reply = self._call(request_id, method, handler, params)
            if isinstance(reply, Streaming):
                self._stream(conn, request_id, reply)
                return
        finally:
            conn.end_request()
        conn.send(reply)

    def _stream(self, conn: _Connection, request_id: object, streaming: Streaming) -> None:
        try:
            conn.send(encode({"id": request_id, "result": streaming.result}))
            while not conn.closed and not self._stopping.is_set():
                event = streaming.next_event(_TICK_S)
                if event is not None:
                    conn.send(encode({"id": request_id, "event": event}))
        except OSError as exc:
            log.debug("control client %d stopped watching: %s", conn.number, exc)
        finally:
            streaming.close()

    @staticmethod
    def _call(request_id: object, method: str, handler: Handler, params: dict) -> bytes | Streaming:
        try:
            result = handler(params)
            return result if isinstance(result, Streaming) else encode({"id": request_id, "result": result})
        except TalkerError as exc:
            log.info("control %s refused: %s (%s)", method, exc.message, exc.code)
            return error_reply(request_id, exc.code, exc.message)
        except Exception:
            # The traceback is for the journal; clients only learn that it failed and where to look.
            log.exception("control method %s failed", method)
            return error_reply(request_id, ErrorCode.INTERNAL, f"internal error in {method!r}; the daemon's log has the details")

    def _permitted(self, peer: Peer, method: str) -> bool:
        allowed = peer.may_change(self._group_gid)
        log.log(logging.INFO if allowed else logging.WARNING, "control %s %s for uid %d (pid %d)", method,
                "accepted" if allowed else "refused", peer.uid, peer.pid)
        return allowed

    def _list_methods(self, params: dict) -> list[str]:
        return sorted(self._handlers)
