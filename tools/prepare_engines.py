#!/usr/bin/env python3
"""Derive the engine ONNX files that are exported from provisioned models, and verify them.

For every engine under ``engines.dir`` whose manifest has a ``[source]`` table, this exports the ONNX
from the source model (today: the Piper voice split into a text and an audio engine, see
tools/export_piper_split.py) into ``engines.build_dir/<name>/``. The source must match the sha256 in
the manifest, and so must the exported file: the export is deterministic, so a different result means
a different model or exporter and is refused rather than used. Outputs that already match their
manifest are left alone, so a second run costs only the hashing.

Usage: prepare_engines.py [--config FILE] [--force] [--print-sha]

Exit codes: 0 ok, 65 a file is not what its manifest describes (sha256 mismatch, or a source model the
export does not understand; the message names the file), 69 a source model is
missing, 78 the config is invalid.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from talkerd.config import load_config  # noqa: E402
from talkerd.errors import ConfigError, ExitCode  # noqa: E402

DATA_ERROR = 65
"""sysexits EX_DATAERR: a file is not the one the manifest describes."""
DEFAULT_CONFIG = ROOT / "configs" / "default.toml"


class PrepareError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Job:
    """One engine ONNX to derive from a source model."""

    name: str
    """The engine's name (its folder)."""
    export: str
    """Which export makes it (a key of ``EXPORTS``)."""
    source: Path
    """The model it is derived from."""
    source_sha256: str
    """The sha256 the source must have."""
    output: Path
    """Where the exported ONNX goes."""
    sha256: str
    """The sha256 the exported ONNX must have."""
    window: int | None
    """For the audio part: its fixed window in latent frames."""
    folder: Path
    """The engine's folder (its manifest and committed files, e.g. a reference embedding)."""
    tokenizer: str | None = None
    """The tokenizer file provisioned beside the ONNX (the manifest's ``metadata.tokenizer``), if any."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export_text(source_path: Path, window: int | None) -> bytes:
    import onnx

    from export_piper_split import export_text_part

    return export_text_part(onnx.load(str(source_path))).SerializeToString()


def _export_audio(source_path: Path, window: int | None) -> bytes:
    import onnx

    from export_piper_split import export_audio_part

    if window is None:
        raise PrepareError("the audio part's manifest gives no fixed window (input z_p)", ExitCode.CONFIG)
    return export_audio_part(onnx.load(str(source_path)), window).SerializeToString()


def _copy(source_path: Path, window: int | None) -> bytes:
    """A model used as it is shipped (Smart Turn): the engine folder gets its own checked copy."""
    return source_path.read_bytes()


def _export_minilm(source_path: Path, window: int | None) -> bytes:
    from export_minilm import export_minilm

    return export_minilm(source_path)


def _minilm_companions(job: Job, onnx_bytes: bytes) -> dict[str, bytes]:
    """The tokenizer beside the ONNX, once the export matches the committed reference embedding."""
    from export_minilm import TOKENIZER_MEMBER, check_against_reference, read_member

    if job.tokenizer is None:
        raise PrepareError(f"{job.name}: the manifest names no tokenizer (metadata.tokenizer)", ExitCode.CONFIG)
    tokenizer = read_member(job.source, TOKENIZER_MEMBER)
    check_against_reference(onnx_bytes, tokenizer.decode("utf-8"), job.folder / "reference.json")
    return {job.tokenizer: tokenizer}


EXPORTS = {"piper-text": _export_text, "piper-audio": _export_audio, "minilm": _export_minilm, "copy": _copy}
"""How each kind of derived engine is made from its source."""
COMPANIONS = {"minilm": _minilm_companions}
"""By export: how it makes the files it also writes beside its ONNX (after checking the export)."""


def find_jobs(engines_dir: Path, build_dir: Path, models_dir: Path) -> list[Job]:
    """Every engine whose manifest says it is derived from a source model."""
    from talkerd.engines.manifest import load_manifest

    jobs = []
    for manifest_path in sorted(engines_dir.glob("*/manifest.toml")):
        manifest = load_manifest(manifest_path.parent)
        if manifest.source is None:
            continue  # committed or trained engines are not derived here
        if manifest.source.export not in EXPORTS:
            raise PrepareError(f"{manifest_path}: source.export: unknown export {manifest.source.export!r} "
                               f"(known: {sorted(EXPORTS)})", ExitCode.CONFIG)
        window = next((spec.opt[-1] for spec in manifest.inputs if spec.name == "z_p"), None)
        jobs.append(Job(
            name=manifest.name, export=manifest.source.export, source=models_dir / manifest.source.file,
            source_sha256=manifest.source.sha256, output=build_dir / manifest.name / manifest.onnx,
            sha256=manifest.sha256, window=window, folder=manifest_path.parent,
            tokenizer=manifest.metadata.get("tokenizer"),
        ))
    return jobs


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a part (the daemon may be starting)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the daemon may run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def prepare(job: Job, *, force: bool, print_sha: bool) -> str:
    """Make one engine ONNX up to date; returns what was done."""
    companions = COMPANIONS.get(job.export)
    if (not force and not print_sha and job.output.exists() and sha256_of(job.output) == job.sha256
            and (job.tokenizer is None or (job.output.parent / job.tokenizer).is_file())):
        return "up to date"
    if not job.source.exists():
        raise PrepareError(f"{job.name}: source model missing: {job.source} (run scripts/setup.sh)", ExitCode.UNAVAILABLE)
    actual = sha256_of(job.source)
    if actual != job.source_sha256:
        raise PrepareError(f"{job.name}: sha256 mismatch for the source model {job.source}: "
                           f"expected {job.source_sha256}, found {actual}", DATA_ERROR)
    started = time.monotonic()
    try:
        data = EXPORTS[job.export](job.source, job.window)
    except ValueError as exc:  # the graph is not laid out as the export expects
        raise PrepareError(f"{job.name}: cannot export {job.source}: {exc}", DATA_ERROR) from None
    exported = hashlib.sha256(data).hexdigest()
    if print_sha:
        return f"sha256 = \"{exported}\" (nothing written)"
    if exported != job.sha256:
        raise PrepareError(f"{job.name}: sha256 mismatch for the exported {job.output.name}: the manifest expects "
                           f"{job.sha256}, the export gives {exported} (different onnx version or exporter?)", DATA_ERROR)
    try:
        extra = companions(job, data) if companions is not None else {}
    except ValueError as exc:  # the export does not give the reference result
        raise PrepareError(f"{job.name}: {exc}", DATA_ERROR) from None
    _write_atomically(job.output, data)
    for name, content in extra.items():
        _write_atomically(job.output.parent / name, content)
    return f"exported {len(data) / 1e6:.1f} MB in {time.monotonic() - started:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config naming engines.dir, engines.build_dir and tts.voice_config")
    parser.add_argument("--force", action="store_true", help="export again even when the outputs match")
    parser.add_argument("--print-sha", action="store_true", help="print each export's sha256 (for writing a new manifest)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        models_dir = config.tts.voice_config.parent
        for job in find_jobs(config.engines.dir, config.engines.build_dir, models_dir):
            print(f"prepare_engines: {job.name}: {prepare(job, force=args.force, print_sha=args.print_sha)}")
    except ConfigError as exc:
        print(f"prepare_engines: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except PrepareError as exc:
        print(f"prepare_engines: {exc}", file=sys.stderr)
        return exc.exit_code
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
