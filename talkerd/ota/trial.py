"""A release's trial: its engines loaded, warmed up and run on the bundle's warm-up inputs, each output
compared with the expected one within the bundle's tolerance (then ``daemon_link`` has the daemon load it).

The check runs on the backend the OTA config names (``auto``: TensorRT where an engine for this device
was built or shipped, else ONNX Runtime — on the development machine always ONNX Runtime).
"""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import List

import numpy as np

from ..config import EnginesConfig
from ..errors import EngineError, TalkerError
from .manifest import ENGINES_DIR, WARMUP_FILE, BundleManifest, EngineEntry

log = logging.getLogger(__name__)


def engines_config(release: Path, backend: str, threads: int) -> EnginesConfig:
    """The release's engines as the daemon sees them: definitions, ONNX and built engines in one folder."""
    folder = Path(release) / ENGINES_DIR
    return EnginesConfig.model_validate({"dir": folder, "build_dir": folder, "backend": backend, "cpu_threads": threads})


def warmup_arrays(path: Path) -> tuple:
    """(inputs, expected outputs) from an ``ota-warmup.npz``; ``EngineError`` if it is not one."""
    try:
        with np.load(io.BytesIO(Path(path).read_bytes()), allow_pickle=False) as data:
            inputs = {k[3:]: data[k] for k in data.files if k.startswith("in.")}
            outputs = {k[4:]: data[k] for k in data.files if k.startswith("out.")}
    except (AttributeError, ValueError, OSError, zipfile.BadZipFile) as exc:  # np.load's ways of saying "not an npz"
        raise EngineError(f"{Path(path).name} is not a numpy .npz of arrays ({exc})") from None
    return inputs, outputs


def compare(name: str, got: dict, expected: dict, rtol: float, atol: float) -> List[str]:
    """Each expected output against the one produced, in words."""
    problems = []
    for output, want in expected.items():
        have = got.get(output)
        if have is None:
            problems.append(f"engine {name}: output {output} was not produced")
        elif have.shape != want.shape:
            problems.append(f"engine {name}: output {output} has shape {list(have.shape)}, expected {list(want.shape)}")
        elif not np.allclose(have, want, rtol=rtol, atol=atol):
            error = float(np.max(np.abs(have.astype(np.float64) - want.astype(np.float64))))
            problems.append(f"engine {name}: output {output} differs from the expected one "
                            f"(max abs error {error:.3g}; tolerance rtol {rtol:g}, atol {atol:g})")
    return problems


def check_engine(cfg: EnginesConfig, entry: EngineEntry) -> List[str]:
    from ..engines import open_engine

    try:
        engine = open_engine(cfg, entry.name)
    except TalkerError as exc:
        return [f"engine {entry.name}: does not load: {exc.message}"]
    try:
        engine.warm_up()
        if entry.warmup is None:
            return []
        inputs, expected = warmup_arrays(cfg.dir / entry.name / WARMUP_FILE)
        got = engine.run(inputs)
        return compare(entry.name, got, expected, entry.warmup.rtol, entry.warmup.atol)
    except TalkerError as exc:
        return [f"engine {entry.name}: failed to run: {exc.message}"]
    finally:
        engine.close()


def check_release(release: Path, manifest: BundleManifest, backend: str, threads: int) -> List[str]:
    """Every problem the release's engines show (empty: the trial passes)."""
    cfg = engines_config(release, backend, threads)
    problems: List[str] = []
    for entry in manifest.engines:
        found = check_engine(cfg, entry)
        log.info("trial: engine %s: %s", entry.name, "; ".join(found) if found else "ok")
        problems += found
    return problems
