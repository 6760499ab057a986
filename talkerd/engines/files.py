"""Finding an engine's ONNX file and checking it against the manifest's sha256.

Hashing a 60 MB voice costs a fraction of a second per start, so a verified digest is remembered in
``engines.build_dir/sha256-cache.json`` keyed by the file's path, size and modification time: a file
that is replaced or touched is hashed again, an unchanged one is not.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Dict, List

from ..errors import EngineError
from .manifest import EngineManifest

log = logging.getLogger(__name__)

CACHE_FILE = "sha256-cache.json"
_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(cache: Path) -> Dict[str, dict]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable sha256 cache %s: %s", cache, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: Path, entries: Dict[str, dict]) -> None:
    """Write atomically (temporary file + rename) so a power cut never leaves half a cache."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sha256-", dir=str(cache.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entries, handle, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)  # readable by the daemon's user when setup ran as another
        os.replace(tmp, cache)
    except OSError as exc:
        # A read-only build folder only costs a re-hash at the next start.
        log.info("cannot update the sha256 cache %s: %s", cache, exc)


def cached_sha256(path: Path, cache_dir: Path) -> str:
    """The file's sha256, from the cache when its size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key = str(path)
    cache = Path(cache_dir) / CACHE_FILE
    with _lock:
        entries = _read_cache(cache)
        entry = entries.get(key)
        if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            return str(entry.get("sha256", ""))
        digest = sha256_file(path)
        entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        _write_cache(cache, entries)
        return digest


def onnx_candidates(manifest: EngineManifest, engines_dir: Path, build_dir: Path) -> List[Path]:
    """Where the ONNX may be, in order: the engine folder (committed), then the build folder (provisioned)."""
    return [Path(engines_dir) / manifest.name / manifest.onnx, Path(build_dir) / manifest.name / manifest.onnx]


def locate_onnx(manifest: EngineManifest, engines_cfg) -> Path:
    """The engine's ONNX file, checked against the manifest's sha256.

    ``EngineError`` names the file when it is missing everywhere or its content differs.
    """
    candidates = onnx_candidates(manifest, engines_cfg.dir, engines_cfg.build_dir)
    for path in candidates:
        if not path.is_file():
            continue
        digest = cached_sha256(path, engines_cfg.build_dir)
        if digest != manifest.sha256:
            raise EngineError(
                f"engine {manifest.name}: {path} has sha256 {digest}, the manifest expects {manifest.sha256} "
                f"(re-provision it: python tools/prepare_engines.py)")
        return path
    raise EngineError(
        f"engine {manifest.name}: ONNX file {manifest.onnx} not found (looked in "
        f"{' and '.join(str(p.parent) for p in candidates)}; provision it with python tools/prepare_engines.py)")
