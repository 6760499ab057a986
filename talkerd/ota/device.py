"""What this device runs: TensorRT version, GPU compute capability, JetPack release.

Each is detected unless the OTA config's ``[platform]`` names it; an absent one is None.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import EngineError
from .config import PlatformConfig

log = logging.getLogger(__name__)

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
L4T_TO_JETPACK = {"36.2": "6.0", "36.3": "6.0", "36.4.0": "6.1", "36.4.2": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1"}
"""L4T release → JetPack release (NVIDIA's release notes); the longest matching prefix wins."""


@dataclass(frozen=True)
class Platform:
    tensorrt: Optional[str]
    compute_capability: Optional[str]
    jetpack: Optional[str]

    def describe(self) -> str:
        return (f"TensorRT {self.tensorrt or 'none'}, compute capability {self.compute_capability or 'none'}, "
                f"JetPack {self.jetpack or 'none'}")


def _tensorrt_and_gpu() -> tuple:
    from ..engines.tensorrt_backend import runtime_info

    try:
        return runtime_info()
    except EngineError as exc:
        log.debug("no TensorRT/GPU: %s", exc.message)
        return None, None


def jetpack_release(path: Path = TEGRA_RELEASE) -> Optional[str]:
    """From ``# R36 (release), REVISION: 4.0`` (L4T 36.4.0) to "6.1"; None off a Jetson."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    l4t = f"{match.group(1)}.{match.group(2)}"
    for prefix in sorted(L4T_TO_JETPACK, key=len, reverse=True):
        if l4t == prefix or l4t.startswith(prefix + "."):
            return L4T_TO_JETPACK[prefix]
    return f"L4T {l4t}"


def _setting(value: str, detected) -> Optional[str]:
    if value == "none":
        return None
    if value == "auto":
        return detected() if callable(detected) else detected
    return value


def detect(settings: PlatformConfig) -> Platform:
    needs_gpu = "auto" in (settings.tensorrt, settings.compute_capability)
    version, capability = _tensorrt_and_gpu() if needs_gpu else (None, None)
    return Platform(_setting(settings.tensorrt, version), _setting(settings.compute_capability, capability),
                    _setting(settings.jetpack, jetpack_release))
