"""Run by tests/test_ota_crash.py as a real process: for each crash point n, copy the template store,
fork a child that installs the bundle and is killed with SIGKILL by its own file layer just before
step n, and report how each child ended (one JSON line per point).

    python -m tests.ota_crash_runner CONFIG_JSON TEMPLATE BUNDLE OUT FIRST LAST
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

from talkerd.ota.config import OtaConfig
from talkerd.ota.device import Platform
from talkerd.ota.fileio import FileLayer
from talkerd.ota.installer import Installer


def _kill_before(step: int):
    layer = FileLayer()

    def on_step(kind, path):
        if layer.steps == step:
            os.kill(os.getpid(), signal.SIGKILL)

    layer.on_step = on_step
    return layer


def main(argv) -> int:
    config, template, bundle, out, first, last = argv
    data = json.loads(Path(config).read_text())
    for step in range(int(first), int(last) + 1):
        store = Path(out) / str(step)
        shutil.copytree(template, store, symlinks=True)
        cfg = OtaConfig.model_validate({**data, "root": str(store)})
        pid = os.fork()
        if pid == 0:
            try:
                Installer(cfg, layer=_kill_before(step), platform=Platform(None, None, None)).install(Path(bundle))
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print(json.dumps({"step": step, "killed": killed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
