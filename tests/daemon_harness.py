"""Starts the real daemon as a subprocess and talks to it with the real talkerctl."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import DEFAULT_CONFIG, ROOT


def write_config(folder: Path, replacements: dict[str, str] | None = None, extra: str = "") -> Path:
    """The development config with its relative paths made absolute and a private control socket."""
    text = DEFAULT_CONFIG.read_text()
    # The test daemons skip the voice's longest-sentence warm-up (6 s each on this machine); the
    # fresh-machine test, the soak and the benchmark start the development config as it is.
    replacements = {"warm_up_longest = true": "warm_up_longest = false", **(replacements or {})}
    for old, new in replacements.items():
        assert old in text, f"the default config no longer contains {old!r}"
        text = text.replace(old, new)
    text = text.replace('"../', f'"{ROOT}/')
    text += f'\n[control]\nsocket = "{folder / "control.sock"}"\n' + extra
    path = folder / "talkerd.toml"
    path.write_text(text)
    return path


class DaemonProcess:
    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None,
                 launcher: tuple[str, ...] = ("-m", "talkerd")) -> None:
        """``launcher``: what runs the daemon (``tests.patched_daemon`` makes one part misbehave)."""
        self.config = config
        self.socket = config.parent / "control.sock"
        self.log_path = config.parent / "talkerd.log"
        self._log = self.log_path.open("w")
        environment = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, *launcher, "run", "--config", str(config), *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
        )

    def ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "talkerd.control.client", "--socket", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def call(self, *args: str) -> dict:
        result = self.ctl("--json", *args)
        assert result.returncode == 0, f"talkerctl {args} failed ({result.returncode}): {result.stderr}\n{self.log()}"
        return json.loads(result.stdout)

    def wait_ready(self, timeout: float = 120) -> dict:
        """The status once the daemon is ready; stops the daemon (no process left behind) when it never is."""
        try:
            return self._wait_ready(timeout)
        except AssertionError:
            self.stop()
            raise

    def wait_prerendered(self, timeout: float = 120) -> None:
        """Until the daemon's background rendering of its fixed answers is done (it starts after READY
        and takes the CPU a test measuring the mouth or timing needs)."""
        deadline = time.monotonic() + timeout
        while True:
            cache = self.call("status").get("prerendered")
            if cache is None or cache["pending"] == 0:
                return
            assert time.monotonic() < deadline, f"fixed answers still being rendered: {cache}"
            time.sleep(0.2)

    def _wait_ready(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"talkerd exited with {self.process.returncode}:\n{self.log()}")
            if self.socket.exists():
                try:
                    result = self.ctl("--json", "status", timeout=30)
                except subprocess.TimeoutExpired:
                    continue  # a busy machine: ask again until the deadline
                if result.returncode == 0 and json.loads(result.stdout).get("state") == "ready":
                    return json.loads(result.stdout)
            time.sleep(0.2)
        raise AssertionError(f"talkerd was not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode
