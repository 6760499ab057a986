"""The control server on real Unix sockets: protocol, malformed requests, concurrency, socket ownership."""
from __future__ import annotations

import grp
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest

from talkerd.control.server import ControlServer, ControlSocketError, SocketInUse
from talkerd.control.protocol import ControlClient, DaemonError, NoDaemon, resolve_socket_path
from talkerd.errors import ConfigError, RequestError, TalkerError

HANG_GUARD_S = 20.0  # only stops a broken implementation from hanging the suite; never a speed limit


@pytest.fixture
def sock_dir():
    # Short paths: Unix socket paths are limited to 107 bytes, pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="tc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Raw:
    """A bare client: writes bytes, reads reply lines (to send what ControlClient never would)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(HANG_GUARD_S)
        self.sock.connect(str(path))
        self.buffer = b""

    def send(self, data: bytes | dict) -> None:
        self.sock.sendall(data if isinstance(data, bytes) else json.dumps(data).encode() + b"\n")

    def reply(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "server closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()


def assert_disconnected(sock: socket.socket) -> None:
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass  # closed while still in the listen backlog: a reset, also a disconnection


def status(params: dict) -> dict:
    return {"state": "ready", "params": params}


@pytest.fixture
def serve(sock_dir):
    servers = []

    def start(handlers=None, **options) -> ControlServer:
        server = ControlServer(sock_dir / "run" / "control.sock", handlers or {"status": status}, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_good_requests_get_their_result_and_id(serve):
    server = serve()
    raw = Raw(server.path)
    raw.send({"id": 1, "method": "status", "params": {"verbose": True}})
    assert raw.reply() == {"id": 1, "result": {"state": "ready", "params": {"verbose": True}}}
    raw.send({"id": "abc", "method": "status"})  # params may be left out
    assert raw.reply() == {"id": "abc", "result": {"state": "ready", "params": {}}}
    raw.send(b'{"id": 3, "method": "status", "params": null}\r\n')  # CRLF and null params are tolerated
    assert raw.reply()["id"] == 3
    raw.send({"id": 4, "method": "methods"})
    assert raw.reply() == {"id": 4, "result": ["methods", "status"]}
    raw.close()


MALFORMED = [
    (b"this is not json\n", None, "bad_request", "not valid JSON"),
    (b"[1, 2]\n", None, "bad_request", "JSON object"),
    (b'"status"\n', None, "bad_request", "JSON object"),
    (b"\xff\xfe\xfd\n", None, "bad_request", "UTF-8"),
    (b'{"id": 5}\n', 5, "bad_request", "method"),
    (b'{"id": 6, "method": 42}\n', 6, "bad_request", "method"),
    (b'{"id": 7, "method": "status", "params": [1]}\n', 7, "bad_request", "params"),
    (b'{"id": 8, "method": "status", "params": "x"}\n', 8, "bad_request", "params"),
    (b'{"id": 9, "method": "status", "pararms": {}}\n', 9, "bad_request", "pararms"),
    (b'{"id": [1], "method": "status"}\n', None, "bad_request", "id"),
    (b'{"id": 10, "method": "shutdown_everything"}\n', 10, "unknown_method", "status"),
    (b"[" * 60000 + b"\n", None, "bad_request", "nested more than"),  # json recursion would kill the thread
    (b'{"id": 11, "method": "status", "params": {"a": ' + b"[" * 40 + b"]" * 40 + b"}}\n", None, "bad_request", "nested"),
    (b'{"id": NaN, "method": "status"}\n', None, "bad_request", "NaN"),
    (b'{"id": 1e999, "method": "status"}\n', None, "bad_request", "1e999"),
    (b'{"id": -Infinity, "method": "status"}\n', None, "bad_request", "Infinity"),
    (b'{"id": ' + b"9" * 5000 + b', "method": "status"}\n', None, "bad_request", "not usable JSON"),
    (b'{"id": 12, "method": "status", "params": {"text": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}}\n', 12, None, None),
]


def test_every_malformed_request_gets_a_coded_error_and_the_connection_stays_usable(serve):
    server = serve()
    raw = Raw(server.path)
    for line, request_id, code, words in MALFORMED:
        raw.send(line)
        reply = raw.reply()
        assert reply["id"] == request_id, line
        if code is None:  # brackets inside a string are text, not nesting
            assert reply["result"]["state"] == "ready"
            continue
        assert reply["error"]["code"] == code, line
        assert words in reply["error"]["message"], (line, reply)
        assert "result" not in reply
        raw.send({"id": "after", "method": "status"})  # the same connection still works
        assert raw.reply()["result"]["state"] == "ready"
    raw.close()


def test_blank_lines_are_ignored(serve):
    raw = Raw(serve().path)
    raw.send(b"\n  \n\n")
    raw.send({"id": 1, "method": "status"})
    assert raw.reply()["id"] == 1  # no replies were sent for the blank lines
    raw.close()


def test_an_oversized_line_is_refused_and_skipped_even_when_it_arrives_in_pieces(serve):
    server = serve(max_line_bytes=1024)
    raw = Raw(server.path)
    raw.send({"id": 1, "method": "status", "params": {"text": "x" * 2000}})
    assert raw.reply() == {"id": None, "error": {"code": "request_too_large", "message": raw_message(1024)}}
    for _ in range(5):  # 5 KiB without a newline, then the end of the line: one error only
        raw.send(b"y" * 1024)
    raw.send(b"tail of the long line\n")
    raw.send({"id": 2, "method": "status"})
    assert raw.reply()["error"]["code"] == "request_too_large"
    assert raw.reply() == {"id": 2, "result": {"state": "ready", "params": {}}}
    raw.close()


def raw_message(limit: int) -> str:
    return f"request line longer than {limit} bytes; skipped"


def test_handler_errors_become_error_replies_without_leaking_internals(serve, caplog):
    def refuse(params):
        raise RequestError("params.text must be a non-empty string")

    def not_ready(params):
        raise TalkerError("still loading models", code="not_ready")

    def crash(params):
        raise ValueError("secret internal detail")

    handlers = {"refuse": refuse, "not_ready": not_ready, "crash": crash, "status": status,
                "unserialisable": lambda p: {"x": object()}, "nan": lambda p: float("nan")}
    server = serve(handlers)
    with ControlClient(server.path, timeout_s=HANG_GUARD_S) as client:
        with pytest.raises(DaemonError) as refused:
            client.call("refuse")
        assert (refused.value.code, refused.value.message) == ("bad_request", "params.text must be a non-empty string")
        with pytest.raises(DaemonError) as busy:
            client.call("not_ready")
        assert busy.value.code == "not_ready"
        with caplog.at_level(logging.ERROR, logger="talkerd.control.server"):
            for method in ("crash", "unserialisable", "nan"):
                with pytest.raises(DaemonError) as failed:
                    client.call(method)
                assert failed.value.code == "internal"
                assert "secret" not in failed.value.message and method in failed.value.message
        assert "secret internal detail" in caplog.text and "Traceback" in caplog.text
        assert client.call("status")["state"] == "ready"  # the server carries on


def test_a_slow_handler_blocks_neither_other_clients_nor_the_same_connection(serve):
    release = threading.Event()
    entered = threading.Event()

    def slow(params):
        entered.set()
        assert release.wait(HANG_GUARD_S)
        return "finished"

    server = serve({"status": status, "ask": slow})
    first = Raw(server.path)
    first.send({"id": 1, "method": "ask"})
    assert entered.wait(HANG_GUARD_S)
    # While "ask" is provably still running, status is answered on another connection ...
    with ControlClient(server.path, timeout_s=HANG_GUARD_S) as other:
        assert other.call("status")["state"] == "ready"
    # ... and on the same connection, whose reply overtakes the slow one.
    first.send({"id": 2, "method": "status"})
    assert first.reply()["id"] == 2
    assert not release.is_set()
    release.set()
    assert first.reply() == {"id": 1, "result": "finished"}
    first.close()


def test_many_clients_at_once_each_get_their_own_replies(serve):
    server = serve({"echo": lambda params: params})
    failures: list[str] = []

    def client(number: int) -> None:
        try:
            with ControlClient(server.path, timeout_s=HANG_GUARD_S) as c:
                for turn in range(10):
                    if c.call("echo", {"client": number, "turn": turn}) != {"client": number, "turn": turn}:
                        failures.append(f"client {number} turn {turn}")
        except TalkerError as exc:
            failures.append(f"client {number}: {exc.message}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_hung_clients_do_not_block_others_and_are_dropped(serve):
    big = "z" * (1 << 20)
    server = serve({"status": status, "big": lambda params: big}, send_timeout_s=0.5)
    silent = Raw(server.path)
    silent.send(b'{"id": 1, "method": "sta')  # half a request, never finished
    hung = Raw(server.path)
    for n in range(16):  # replies it never reads: the socket buffer fills and the server's send blocks
        hung.send({"id": n, "method": "big"})
    with ControlClient(server.path, timeout_s=HANG_GUARD_S) as other:
        assert other.call("status")["state"] == "ready"
    deadline = time.monotonic() + HANG_GUARD_S
    while server.client_count > 1 and time.monotonic() < deadline:  # the hung reader gets dropped
        time.sleep(0.05)
    assert server.client_count == 1  # only the half-request client is left, still connected
    with ControlClient(server.path, timeout_s=HANG_GUARD_S) as other:
        assert other.call("status")["state"] == "ready"
    silent.close()
    hung.close()


def test_limits_on_clients_and_requests_in_flight_answer_busy(serve):
    release = threading.Event()
    server = serve({"status": status, "wait": lambda p: release.wait(HANG_GUARD_S)}, max_clients=2, max_inflight=2)
    a = Raw(server.path)
    a.send({"id": 1, "method": "wait"})
    a.send({"id": 2, "method": "wait"})
    a.send({"id": 3, "method": "wait"})
    assert a.reply() == {"id": 3, "error": {"code": "busy", "message": "more than 2 requests in flight on this connection"}}
    b = Raw(server.path)
    b.send({"id": 1, "method": "status"})
    assert b.reply()["result"]["state"] == "ready"
    c = Raw(server.path)
    assert c.reply()["error"]["code"] == "busy"
    assert_disconnected(c.sock)  # and the server closed it
    release.set()
    assert {a.reply()["id"], a.reply()["id"]} == {1, 2}
    for raw in (a, b, c):
        raw.close()


def test_a_client_that_leaves_mid_request_does_not_hurt_the_server(serve):
    release = threading.Event()
    done = threading.Event()

    def slow(params):
        release.wait(HANG_GUARD_S)
        done.set()
        return "late"

    server = serve({"status": status, "ask": slow})
    raw = Raw(server.path)
    raw.send({"id": 1, "method": "ask"})
    raw.close()
    release.set()
    assert done.wait(HANG_GUARD_S)
    with ControlClient(server.path, timeout_s=HANG_GUARD_S) as client:
        assert client.call("status")["state"] == "ready"


def test_socket_mode_is_0660_and_the_folder_is_created(serve, sock_dir):
    server = serve()
    st = os.stat(server.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_IMODE(os.stat(sock_dir / "run").st_mode) == 0o750


def _another_group() -> grp.struct_group:
    """A group this process may give files to, other than its own primary group."""
    candidates = [g for g in grp.getgrall() if g.gr_gid != os.getgid()] if os.geteuid() == 0 else [
        grp.getgrgid(gid) for gid in os.getgroups() if gid != os.getgid()
    ]
    if not candidates:
        pytest.skip("this user has no second group to give the socket to")
    return candidates[0]


def test_the_socket_and_a_new_folder_are_given_to_the_configured_group(serve, sock_dir):
    group = _another_group()
    server = serve(group=group.gr_name)
    assert os.stat(server.path).st_gid == group.gr_gid
    assert os.stat(sock_dir / "run").st_gid == group.gr_gid


def test_an_unknown_group_is_a_config_error_naming_it(sock_dir):
    server = ControlServer(sock_dir / "control.sock", {"status": status}, group="no-such-group-talkerd")
    with pytest.raises(ConfigError, match="control.group: no such group 'no-such-group-talkerd'"):
        server.start()
    assert not (sock_dir / "control.sock").exists()


def test_a_stale_socket_is_replaced(sock_dir):
    path = sock_dir / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a crashed daemon leaves its socket file behind
    dead.close()
    with pytest.raises(NoDaemon):
        ControlClient(path).connect()
    with ControlServer(path, {"status": status}):
        with ControlClient(path, timeout_s=HANG_GUARD_S) as client:
            assert client.call("status")["state"] == "ready"


def test_a_second_server_does_not_steal_a_live_socket(serve):
    first = serve()
    second = ControlServer(first.path, {"status": lambda p: "impostor"})
    with pytest.raises(SocketInUse, match="in use"):
        second.start()
    with ControlClient(first.path, timeout_s=HANG_GUARD_S) as client:
        assert client.call("status")["state"] == "ready"
    second.stop()  # stopping a server that never started leaves the live socket alone
    assert stat.S_ISSOCK(os.stat(first.path).st_mode)


def test_a_live_socket_of_another_program_is_not_stolen(sock_dir):
    path = sock_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen(4)
        with pytest.raises(SocketInUse, match="already running"):
            ControlServer(path, {"status": status}).start()
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(str(path))  # still the other program's socket
        other.settimeout(HANG_GUARD_S)
        other.accept()[0].close()
        probe.close()


def test_a_file_that_is_not_a_socket_is_left_alone(sock_dir):
    path = sock_dir / "control.sock"
    path.write_text("precious")
    with pytest.raises(ControlSocketError, match="not a socket"):
        ControlServer(path, {"status": status}).start()
    assert path.read_text() == "precious"


def test_stop_removes_the_socket_and_clients_then_find_no_daemon(sock_dir):
    server = ControlServer(sock_dir / "control.sock", {"status": status})
    server.start()
    connected = Raw(server.path)
    server.stop()
    assert not server.path.exists()
    assert_disconnected(connected.sock)  # connected clients are disconnected
    with pytest.raises(NoDaemon, match=str(server.path)):
        ControlClient(server.path).connect()
    server.start()  # and it can serve again
    with ControlClient(server.path, timeout_s=HANG_GUARD_S) as client:
        assert client.call("status")["state"] == "ready"
    server.stop()


def test_a_path_too_long_for_a_unix_socket_is_refused_clearly(sock_dir):
    with pytest.raises(ControlSocketError, match="longer than 107 bytes"):
        ControlServer(sock_dir / ("d" * 120) / "control.sock", {}).start()


def test_configured_paths_expand_the_runtime_directory(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert resolve_socket_path("${XDG_RUNTIME_DIR}/talkerd/control.sock") == Path("/run/user/1000/talkerd/control.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    # A system service has no session: the default lands in /run, even after the config
    # loader has prefixed the unexpanded variable with the config's folder.
    assert resolve_socket_path("${XDG_RUNTIME_DIR}/talkerd/control.sock") == Path("/run/talkerd/control.sock")
    assert resolve_socket_path("/etc/talkerd/${XDG_RUNTIME_DIR}/talkerd/control.sock") == Path("/run/talkerd/control.sock")
    assert resolve_socket_path(None) == Path("/run/talkerd/control.sock")
    with pytest.raises(ConfigError, match="control.socket"):
        resolve_socket_path("$NO_SUCH_VARIABLE_TALKERD/control.sock")


PEER_SCRIPT = r"""
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(b'{"id": 1, "method": "status"}\n{"id": 2, "method": "ask", "params": {"text": "hi"}}\n')
replies, buffer = {}, b""
while len(replies) < 2:
    buffer += sock.recv(65536)
    *lines, buffer = buffer.split(b"\n")
    for line in lines:
        reply = json.loads(line)
        replies[reply["id"]] = reply
print(json.dumps(replies))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="needs root to act as other users")
def test_changing_methods_are_refused_to_peers_outside_the_group_and_logged(tmp_path, caplog):
    """Even through a socket whose mode lets anyone in, only the group (or root, or the daemon's user)
    may call a method that changes things; reading stays open. SO_PEERCRED tells who is calling."""
    import subprocess

    group = grp.getgrnam("audio") if "audio" in {g.gr_name for g in grp.getgrall()} else _another_group()
    folder = Path(tempfile.mkdtemp(prefix="talkerd-peers-"))
    try:
        os.chmod(folder, 0o755)
        server = ControlServer(folder / "run" / "control.sock", {"status": status, "ask": lambda p: {"asked": p["text"]}},
                               group=group.gr_name, restricted=frozenset({"ask"}))
        server.start()
        os.chmod(folder / "run", 0o755)
        os.chmod(server.path, 0o666)  # a mis-set mode: the per-request check still holds
        caplog.set_level(logging.INFO, logger="talkerd.control.server")

        def as_nobody(*extra_groups: int) -> dict:
            run = subprocess.run(["/usr/bin/python3", "-c", PEER_SCRIPT, str(server.path)], capture_output=True, text=True,
                                 timeout=HANG_GUARD_S, user=65534, group=65534, extra_groups=list(extra_groups), cwd="/")
            assert run.returncode == 0, run.stderr
            return json.loads(run.stdout)

        outsider = as_nobody()
        assert outsider["1"]["result"]["state"] == "ready"
        assert outsider["2"]["error"]["code"] == "permission_denied" and "'ask'" in outsider["2"]["error"]["message"]
        member = as_nobody(group.gr_gid)
        assert member["2"]["result"] == {"asked": "hi"}
        with ControlClient(server.path, timeout_s=HANG_GUARD_S) as client:  # root
            assert client.call("ask", {"text": "yo"}) == {"asked": "yo"}
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log = [r.getMessage() for r in caplog.records]
    assert "control ask refused for uid 65534" in " ".join(log)
    assert sum("control ask accepted for uid" in line for line in log) == 2
