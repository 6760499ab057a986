"""The publisher's side: engine folders, models and keys → one signed bundle file.

For each engine the warm-up input is a seeded random tensor at every input's opt shape (or the feeds
the publisher gives), and the expected output is what ONNX Runtime computes from the bundle's own
ONNX: the kiosk's trial must reproduce it within the tolerance.
"""
from __future__ import annotations

import datetime
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..engines.files import onnx_candidates
from ..engines.manifest import DTYPES, MANIFEST_FILE, EngineManifest, load_manifest
from ..engines.onnxruntime_backend import open_onnxruntime
from ..engines.sidecar import engine_files
from .bundle import file_entry, write_bundle
from .errors import OtaConfigError
from .keys import TrustRoot, sign
from .manifest import (ENGINES_DIR, MODELS_DIR, WARMUP_FILE, BundleManifest, Compatibility, EngineEntry, Warmup,
                       check_contents, manifest_bytes)


@dataclass(frozen=True)
class EngineSource:
    folder: Path
    """The engine definition folder (manifest.toml, perhaps the ONNX)."""
    build_dir: Optional[Path] = None
    """Where its ONNX and prebuilt TensorRT engines are, when not in the folder (``engines.build_dir``)."""
    feeds: Optional[Dict[str, np.ndarray]] = None
    """Warm-up inputs; None for seeded random tensors at the opt shapes."""
    expected: Optional[Dict[str, np.ndarray]] = None
    """Expected outputs; None to compute them with ONNX Runtime."""
    warmup: Warmup = Warmup()


@dataclass(frozen=True)
class BundleSpec:
    version: int
    engines: Sequence[EngineSource] = ()
    models: Dict[str, Path] = field(default_factory=dict)
    """Role → file or folder; shipped as ``models/<its name>``."""
    expires: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc)
                                       + datetime.timedelta(days=90))
    compatibility: Compatibility = Compatibility()
    downgrade_from: Optional[int] = None
    trust: Optional[TrustRoot] = None
    notes: str = ""


def warmup_feeds(manifest: EngineManifest, seed: int = 0) -> Dict[str, np.ndarray]:
    """Seeded random tensors at each input's opt shape (zeros would hide a wrong weight)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in manifest.inputs:
        dtype = DTYPES[spec.dtype]
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(spec.opt).astype(dtype)
        elif dtype is np.bool_:
            feeds[spec.name] = rng.random(spec.opt) > 0.5
        else:
            feeds[spec.name] = rng.integers(0, 50, spec.opt).astype(dtype)
    return feeds


def _engine_files(source: EngineSource, manifest: EngineManifest) -> Dict[str, Path]:
    """Release path → source file: manifest, ONNX, prebuilt engines with sidecars, calibration set."""
    folder = Path(source.folder)
    prefix = f"{ENGINES_DIR}/{manifest.name}/"
    files = {prefix + MANIFEST_FILE: folder / MANIFEST_FILE}
    onnx = next((p for p in onnx_candidates(manifest, folder.parent, source.build_dir or folder.parent) if p.is_file()), None)
    if onnx is None:
        raise OtaConfigError(f"engine {manifest.name}: {manifest.onnx} not found in {folder} or {source.build_dir}")
    files[prefix + manifest.onnx] = onnx
    for built in engine_files(source.build_dir, manifest.name) if source.build_dir else []:
        sidecar = Path(str(built) + ".json")
        if sidecar.is_file():
            files[prefix + built.name] = built
            files[prefix + built.name + ".json"] = sidecar
    if manifest.calibration:
        for path in sorted((folder / manifest.calibration).rglob("*")):
            if path.is_file():
                files[prefix + path.relative_to(folder).as_posix()] = path
    return files


def _warmup_npz(source: EngineSource, manifest: EngineManifest, onnx: Path) -> bytes:
    feeds = source.feeds if source.feeds is not None else warmup_feeds(manifest)
    expected = source.expected
    if expected is None:
        engine = open_onnxruntime(manifest, onnx, threads=1)
        try:
            expected = engine.run(feeds)
        finally:
            engine.close()
    buffer = io.BytesIO()
    np.savez(buffer, **{f"in.{k}": v for k, v in feeds.items()}, **{f"out.{k}": v for k, v in expected.items()})
    return buffer.getvalue()


def _model_files(role: str, source: Path) -> Dict[str, Path]:
    source = Path(source)
    if source.is_file():
        return {f"{MODELS_DIR}/{source.name}": source}
    if source.is_dir():
        return {f"{MODELS_DIR}/{source.name}/{p.relative_to(source).as_posix()}": p
                for p in sorted(source.rglob("*")) if p.is_file()}
    raise OtaConfigError(f"model {role}: {source} does not exist")


def make_bundle(spec: BundleSpec, out: Path, keys: Sequence, *, created: Optional[datetime.datetime] = None) -> BundleManifest:
    """Write the signed bundle ``out``; returns its manifest."""
    sources: Dict[str, Path] = {}
    engines: List[EngineEntry] = []
    with tempfile.TemporaryDirectory(prefix="talkerd-ota-") as scratch:
        for index, source in enumerate(spec.engines):
            manifest = load_manifest(Path(source.folder))
            files = _engine_files(source, manifest)
            sources.update(files)
            npz = Path(scratch) / f"{index}-{WARMUP_FILE}"
            npz.write_bytes(_warmup_npz(source, manifest, files[f"{ENGINES_DIR}/{manifest.name}/{manifest.onnx}"]))
            sources[f"{ENGINES_DIR}/{manifest.name}/{WARMUP_FILE}"] = npz
            engines.append(EngineEntry(name=manifest.name, warmup=source.warmup))
        models = {}
        for role, path in spec.models.items():
            files = _model_files(role, path)
            sources.update(files)
            models[role] = f"{MODELS_DIR}/{Path(path).name}"
        manifest = BundleManifest(
            version=spec.version,
            created=created or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0),
            expires=spec.expires, downgrade_from=spec.downgrade_from, compatibility=spec.compatibility,
            engines=tuple(engines), models=models, trust=spec.trust, notes=spec.notes,
            files=tuple(file_entry(path, sources[path]) for path in sorted(sources)))
        check_contents(manifest)
        raw = manifest_bytes(manifest)
        write_bundle(out, manifest, sources, sign(keys, raw), raw_manifest=raw)
    return manifest
