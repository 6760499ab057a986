"""The running daemon and OTA: the daemon reads its engines through the store's ``current`` link; an
install tells it to load the new release (``engines.reload``), ``talkerctl engines`` shows it, and a
client asking ``status`` every 100 ms meanwhile never gets an error; a release failing its trial is
rolled back while the daemon keeps serving the old one."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from talkerd.ota.errors import TrialFailed
from talkerd.ota.publish import EngineSource

from .daemon_harness import DaemonProcess, write_config
from .ota_helpers import FACE_ENGINE, ROOT, affine_engine, bundle, installer, key, ota_config, write_trust

pytestmark = pytest.mark.slow
VAR_ENGINES = ROOT / "var" / "engines"


def _engines(extra=()):
    if not (VAR_ENGINES / "piper-joe-text" / "piper-joe-text.onnx").is_file():
        pytest.skip("the Piper engines are not provisioned (python tools/prepare_engines.py)")
    return [EngineSource(ROOT / "engines" / n, VAR_ENGINES) for n in ("piper-joe-text", "piper-joe-audio")] + [FACE_ENGINE, *extra]


class _StatusPoller(threading.Thread):
    def __init__(self, socket) -> None:
        super().__init__(daemon=True)
        from talkerd.control.protocol import ControlClient

        self.client = ControlClient(socket, timeout_s=30)
        self.stop_event, self.calls, self.errors = threading.Event(), 0, []

    def run(self) -> None:
        with self.client:
            while not self.stop_event.wait(0.1):
                try:
                    self.client.call("status")
                    self.calls += 1
                except Exception as exc:  # every failure is what the test counts
                    self.errors.append(repr(exc))


def test_the_daemon_serves_the_new_release_and_keeps_serving_through_a_failed_trial(tmp_path, capsys):
    signer, public = key(tmp_path / "keys", "publisher")
    socket = tmp_path / "control.sock"
    cfg = ota_config(tmp_path, write_trust(tmp_path / "trust.json", [public]), control_socket=str(socket))
    installer(cfg.model_copy(update={"control_socket": None})).install(bundle(tmp_path / "v1.bundle", 1, [signer], _engines()))
    current = cfg.root / "current" / "engines"
    config = write_config(tmp_path, {'dir = "../engines"': f'dir = "{current}"',
                                     'build_dir = "../var/engines"': f'build_dir = "{current}"'})
    daemon = DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none")
    try:
        daemon.wait_ready()
        assert daemon.call("engines")["release"]["active"] == 1
        poller = _StatusPoller(socket)
        poller.start()
        assert installer(cfg).install(bundle(tmp_path / "v2.bundle", 2, [signer], _engines())).version == 2
        shown = daemon.call("engines")["release"]
        assert (shown["active"], shown["current_link"], shown["pending"], shown["trial"]) == (2, 2, None, None)
        assert daemon.call("status")["engines_release"] == 2
        assert daemon.call("say", "Hello from the new release.")["done"]

        affine = affine_engine(tmp_path)
        x = np.ones((1, 8), np.float32)
        wrong = {"y": x * 5, "pos": np.array(np.nonzero(x > 0), dtype=np.int64)}
        with pytest.raises(TrialFailed, match="rolled back to 2"):
            installer(cfg).install(bundle(tmp_path / "v3.bundle", 3, [signer],
                                          _engines([EngineSource(affine, feeds={"x": x}, expected=wrong)])))
        assert daemon.call("engines")["release"]["active"] == 2
        assert daemon.call("say", "Still here.")["done"]
        time.sleep(0.3)
        poller.stop_event.set()
        poller.join()
        assert poller.calls > 0 and poller.errors == []
        text = daemon.ctl("engines")
        assert text.returncode == 0 and "2" in text.stdout

        # A swap while the avatar speaks: the sentence is finished, the swap takes this long.
        speaking = threading.Thread(target=lambda: daemon.call("say", "A longer sentence spoken while the engines change."))
        speaking.start()
        started = time.monotonic()
        assert daemon.call("call", "engines.reload")["release"] == 2
        swap_s = time.monotonic() - started
        speaking.join()
        with capsys.disabled():
            print(f"\nengines.reload (TTS + face, ONNX Runtime, while speaking): {swap_s:.2f} s; no restart")
    finally:
        daemon.stop()


def test_when_the_budget_does_not_hold_both_sets_the_daemon_restarts_on_the_new_release(tmp_path, capsys):
    """systemd's Restart=on-failure is played by the test: it starts the daemon again when it exits."""
    from talkerd.config import load_config
    from talkerd.memory import plan_memory

    signer, public = key(tmp_path / "keys", "publisher")
    socket = tmp_path / "control.sock"
    cfg = ota_config(tmp_path, write_trust(tmp_path / "trust.json", [public]), control_socket=str(socket))
    installer(cfg.model_copy(update={"control_socket": None})).install(bundle(tmp_path / "v1.bundle", 1, [signer], _engines()))
    current = cfg.root / "current" / "engines"
    replacements = {'dir = "../engines"': f'dir = "{current}"', 'build_dir = "../var/engines"': f'build_dir = "{current}"'}
    config = write_config(tmp_path, replacements)
    budget = int(plan_memory(load_config(config)).total_mb) + 50  # the plan fits; the plan + a second TTS does not
    config = write_config(tmp_path, {**replacements, "budget_mb = 3072": f"budget_mb = {budget}"})
    daemons = [DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none")]
    stopped = {}

    def systemd() -> None:
        first = daemons[0]
        stopped["code"] = first.process.wait()
        stopped["at"] = time.monotonic()
        daemons.append(DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none"))

    try:
        daemons[0].wait_ready()
        restarter = threading.Thread(target=systemd, daemon=True)
        restarter.start()
        assert installer(cfg).install(bundle(tmp_path / "v2.bundle", 2, [signer], _engines())).version == 2
        ready_at = time.monotonic()
        restarter.join()
        assert stopped["code"] == 75
        assert daemons[1].call("engines")["release"]["active"] == 2
        assert daemons[1].call("say", "Back on the new release.")["done"]
        with capsys.disabled():
            print(f"\nrestart to load a release that does not fit beside the old one: daemon down to ready again "
                  f"{ready_at - stopped['at']:.1f} s (the avatar is without a voice that long)")
    finally:
        for daemon in daemons:
            daemon.stop()


def test_a_release_whose_model_does_not_load_in_the_daemon_is_rolled_back(tmp_path):
    """The LLM changes, so the daemon restarts on the release; its GGUF does not load, so the trial fails,
    the release is rolled back and the daemon restarts once more, on the old release, with its LLM."""
    from .gguf_factory import write_tiny_llama

    signer, public = key(tmp_path / "keys", "publisher")
    socket = tmp_path / "control.sock"
    cfg = ota_config(tmp_path, write_trust(tmp_path / "trust.json", [public]), control_socket=str(socket))
    (tmp_path / "src").mkdir()
    gguf = write_tiny_llama(tmp_path / "src" / "llm.gguf")
    installer(cfg.model_copy(update={"control_socket": None})).install(
        bundle(tmp_path / "v1.bundle", 1, [signer], _engines(), models={"llm": gguf}))
    current = cfg.root / "current"
    config = write_config(tmp_path, {'dir = "../engines"': f'dir = "{current / "engines"}"',
                                     'build_dir = "../var/engines"': f'build_dir = "{current / "engines"}"',
                                     'model = "../var/models/smollm2-135m-instruct-q4_1.gguf"': f'model = "{current / "models" / "llm.gguf"}"'})
    args = ("--input", "none", "--display", "none", "--output", "none")
    daemons = [DaemonProcess(config, *args)]
    exits = []
    stop = threading.Event()

    def systemd() -> None:  # Restart=on-failure
        while not stop.is_set():
            code = daemons[-1].process.wait()
            if stop.is_set():
                return
            exits.append(code)
            daemons.append(DaemonProcess(config, *args))

    try:
        assert daemons[0].wait_ready()["components"]["llm"]["state"] == "ok"
        threading.Thread(target=systemd, daemon=True).start()
        broken = tmp_path / "broken" / "llm.gguf"
        broken.parent.mkdir()
        broken.write_bytes(b"GGUF" + bytes(4096))
        with pytest.raises(TrialFailed, match=r"with release 2 the daemon lost llm"):
            installer(cfg).install(bundle(tmp_path / "v2.bundle", 2, [signer], _engines(), models={"llm": broken}))
        assert exits == [75, 75]  # onto release 2, and (the installer waited for it) back onto release 1
        back = daemons[-1].wait_ready()
        assert back["components"]["llm"]["state"] == "ok"
        assert daemons[-1].call("engines")["release"]["active"] == 1
    finally:
        stop.set()
        for daemon in daemons:
            daemon.stop()
