"""``talkerctl diagnose``: one archive an integrator attaches to a support ticket.

The daemon answers the ``diagnose`` method with what only it knows — versions of talkerd and of the
runtimes it loaded, every file its config names with size and sha256, the config with its hash, its
status and a screenshot of the frame on the screen — and the client adds the journal and packs it all
into one ``.tar.gz``.
"""
from __future__ import annotations

import base64
import importlib.metadata
import io
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from .. import __version__
from ..engines.files import sha256_file

RUNTIMES = ("onnxruntime", "llama-cpp-python", "vosk", "piper-tts", "opencv-python-headless", "opencv-python",
            "tensorrt", "pydantic", "cryptography", "prometheus-client")
"""The packages whose versions matter for a kiosk's behaviour (absent ones are left out)."""
JOURNAL_LINES = 2000


def describe_file(path: Path) -> dict:
    """Size and sha256 of a file; count and total size of a folder; or why neither."""
    try:
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file()]
            return {"path": str(path), "folder": True, "files": len(files), "bytes": sum(p.stat().st_size for p in files)}
        return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    except OSError as exc:
        return {"path": str(path), "error": exc.strerror or str(exc)}


def versions() -> dict:
    found = {"talkerd": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in RUNTIMES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    tegra = Path("/etc/nv_tegra_release")
    found["jetson_l4t"] = tegra.read_text().splitlines()[0].strip() if tegra.exists() else None
    return found


def screenshot_png(frame) -> str | None:
    """The frame as a base64 PNG; None before the first frame."""
    if frame is None:
        return None
    import cv2

    ok, png = cv2.imencode(".png", frame)
    return base64.b64encode(png.tobytes()).decode("ascii") if ok else None


def diagnosis(daemon) -> dict:
    """The daemon's part of the archive."""
    from ..registry import named_files

    config_path = Path(daemon.options.config_path)
    loop = daemon.render_loop
    return {
        "taken_at": time.time(),
        "versions": versions(),
        "config": {"path": str(config_path), **describe_file(config_path),
                   "text": config_path.read_text(errors="replace") if config_path.is_file() else None},
        "files": {field: describe_file(Path(path)) for field, path in named_files(daemon.config).items()},
        "status": daemon.status(),
        "screenshot_png": screenshot_png(loop.last_frame if loop is not None else None),
    }


def journal() -> str:
    """The service's last journal lines, or why there are none (no journalctl, not a service here)."""
    if shutil.which("journalctl") is None:
        return "(journalctl is not installed)\n"
    try:
        run = subprocess.run(["journalctl", "-u", "talkerd", "-n", str(JOURNAL_LINES), "--no-pager", "-o", "short-iso"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(journalctl failed: {exc})\n"
    return run.stdout if run.returncode == 0 else f"(journalctl exit {run.returncode}: {run.stderr.strip()})\n"


def write_archive(result: dict, path: Path) -> Path:
    """``result`` (the daemon's reply) and the journal, packed into ``path``."""
    result = dict(result)
    screenshot = result.pop("screenshot_png", None)
    config_text = (result.get("config") or {}).pop("text", None)
    members = {
        "diagnosis.json": json.dumps({k: v for k, v in result.items() if k != "status"}, indent=2).encode(),
        "status.json": json.dumps(result.get("status"), indent=2).encode(),
        "journal.txt": journal().encode(),
    }
    if config_text is not None:
        members["talkerd.toml"] = config_text.encode()
    if screenshot:
        members["screenshot.png"] = base64.b64decode(screenshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"talkerd-diagnose/{name}")
            info.size, info.mtime = len(data), int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return path
