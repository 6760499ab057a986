"""``talkerd-build-engine``: ONNX + manifest → TensorRT engine, with a JSON sidecar beside it.

    talkerd-build-engine [--config FILE] [--engine NAME ...] [--force] [--workspace-mb N]
                         [--timing-cache FILE] [--quiet]

Without ``--engine`` every engine under ``engines.dir`` is built. Each engine goes to
``engines.build_dir/<name>/<name>-trt<version>-sm<cc>-<precision>.engine`` and its sidecar
(``….engine.json``: TensorRT version, compute capability, device memory, flags, ONNX sha256, build
time) is written after it, both by an atomic rename, so a power cut never leaves an engine that the
runtime would trust. An engine already built for this TensorRT, GPU and ONNX is kept unless
``--force``. The timing cache (default ``engines.build_dir/timing-trt<version>-sm<cc>.cache``) makes
rebuilds fast.

Exit codes: 0 built (or already up to date), 2 usage (unknown option or engine), 69 TensorRT or the
GPU is unavailable, or an ONNX is missing or does not match its manifest, 70 the build failed,
78 the config or a manifest is invalid.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import ConfigError, EngineError, ExitCode, TalkerError
from .files import locate_onnx
from .manifest import EngineManifest, load_manifest
from .sidecar import Sidecar, choose_engine, engine_file_name, engine_files, manifest_profile, sidecar_path

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/talkerd/talkerd.toml"
PROG = "talkerd-build-engine"


class BuildFailed(TalkerError):
    """TensorRT could not build an engine from a valid ONNX."""

    code = "engine_build_failed"
    exit_code = ExitCode.SOFTWARE


class _Usage(TalkerError):
    """A command line that names something that does not exist."""

    code = "usage"
    exit_code = ExitCode.USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Build TensorRT engines from the engine manifests.")
    parser.add_argument("--config", default=os.environ.get("TALKERD_CONFIG", DEFAULT_CONFIG),
                        help="config naming engines.dir and engines.build_dir (default %(default)s)")
    parser.add_argument("--engine", action="append", default=[], metavar="NAME",
                        help="build only this engine (repeatable; default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a matching engine exists")
    parser.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace limit (default 1024)")
    parser.add_argument("--timing-cache", type=Path, help="timing cache file (default: in engines.build_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def select_manifests(engines_dir: Path, names: Sequence[str]) -> List[EngineManifest]:
    """The manifests to build; an unknown name is a usage error listing the known ones."""
    known = sorted(p.parent.name for p in Path(engines_dir).glob("*/manifest.toml"))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _Usage(f"unknown engine {', '.join(unknown)} (engines in {engines_dir}: {', '.join(known) or 'none'})")
    return [load_manifest(Path(engines_dir) / name) for name in (names or known)]


def _tensorrt():
    from .tensorrt_backend import _trt_logger, import_tensorrt, runtime_info

    trt, cuda = import_tensorrt()
    version, capability = runtime_info()
    return trt, cuda, _trt_logger(trt), version, capability


def build_one(manifest: EngineManifest, engines_cfg, tools, args) -> str:
    """Build (or keep) one engine; returns a line for the summary."""
    from .trt_build import build_engine, progress_monitor

    trt, cuda, logger, version, capability = tools
    onnx_path = locate_onnx(manifest, engines_cfg)
    existing, _, _ = choose_engine(manifest, engine_files(engines_cfg.build_dir, manifest.name), version, capability)
    if existing is not None and not args.force:
        return f"{manifest.name}: up to date ({existing.name})"
    timing_cache = args.timing_cache or engines_cfg.build_dir / f"timing-trt{version}-sm{capability.replace('.', '')}.cache"
    calibration = engines_cfg.dir / manifest.name / manifest.calibration if manifest.calibration else None
    monitor = None if args.quiet else progress_monitor(trt)
    print(f"{PROG}: building {manifest.name} ({manifest.precision}) from {onnx_path}", file=sys.stderr)
    try:
        result = build_engine(trt, cuda, logger, manifest, onnx_path, timing_cache=timing_cache,
                              workspace_mb=args.workspace_mb, calibration_dir=calibration, monitor=monitor)
    except EngineError as exc:
        raise BuildFailed(exc.message) from exc
    device = cuda.Device(0)
    path = engines_cfg.build_dir / manifest.name / engine_file_name(manifest.name, version, capability,
                                                                      manifest.precision)
    sidecar = Sidecar(
        engine=manifest.name, manifest_version=manifest.version, onnx_sha256=manifest.sha256,
        tensorrt_version=version, compute_capability=capability, device_name=str(device.name()),
        device_memory_bytes=result.device_memory_bytes, engine_bytes=len(result.data),
        precision=manifest.precision, flags=result.flags, profile=manifest_profile(manifest),
        built_at=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        build_seconds=round(result.seconds, 1))
    _atomic_write(path, result.data)
    _atomic_write(sidecar_path(path), (sidecar.model_dump_json(indent=2) + "\n").encode())
    return (f"{manifest.name}: built {path} in {result.seconds:.1f} s ({len(result.data) / 2**20:.1f} MiB, "
            f"{result.device_memory_bytes / 2**20:.1f} MiB activations, {'+'.join(result.flags) or 'FP32'})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage line
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    if args.workspace_mb < 16:
        print(f"{PROG}: --workspace-mb must be at least 16", file=sys.stderr)
        return ExitCode.USAGE
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    from ..config import load_config

    try:
        engines_cfg = load_config(args.config).engines
        manifests = select_manifests(engines_cfg.dir, args.engine)
        try:
            tools = _tensorrt()
        except EngineError as exc:
            print(f"{PROG}: cannot build TensorRT engines here: {exc.message}", file=sys.stderr)
            return ExitCode.UNAVAILABLE
        for manifest in manifests:
            print(f"{PROG}: {build_one(manifest, engines_cfg, tools, args)}")
    except (ConfigError, EngineError, BuildFailed, _Usage) as exc:
        print(f"{PROG}: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
