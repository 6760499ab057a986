"""``/etc/talkerd/ota.toml``: where the release store is, which keys are trusted, and the limits.

The installer is its own program (and systemd unit, with network access); its config is its own file
so the daemon's config needs nothing for it. Relative paths are taken from the file's folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import ConfigPath
from ..tomlfile import read_toml, validation_error

DEFAULT_CONFIG = Path("/etc/talkerd/ota.toml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class PlatformConfig(_Section):
    """What the device runs, for the compatibility check: "auto" detects it, "none" says it is absent."""

    tensorrt: str = "auto"
    """TensorRT version ("10.3.0"), "auto" (from the tensorrt module) or "none"."""
    compute_capability: str = "auto"
    """GPU compute capability ("8.7"), "auto" (from the GPU) or "none"."""
    jetpack: str = "auto"
    """JetPack release ("6.1"), "auto" (from /etc/nv_tegra_release) or "none"."""


class OtaConfig(_Section):
    """The OTA installer's settings."""

    root: ConfigPath = Path("/var/lib/talkerd/engines")
    """The store: the ``current`` link, ``state.json``, the lock. The daemon's config reads its engines
    and models through ``<root>/current/``."""
    releases: Optional[ConfigPath] = None
    """Where releases are staged and kept, one folder per version; default ``<root>/releases``. Must be
    on the same file system as ``root`` (the switch is a rename)."""
    downloads: Optional[ConfigPath] = None
    """Partial and finished downloads; default ``ota/downloads`` beside the store's folder
    (``/var/lib/talkerd/ota/downloads``), so a refused download leaves the store untouched."""
    trust: ConfigPath = Path("/etc/talkerd/ota-trust.json")
    """The pinned trust root: public keys and threshold (``talkerd-ota trust`` writes one)."""
    keep: int = Field(default=2, ge=1, le=50)
    """Releases kept besides the factory release (the active one included); older ones are pruned."""
    max_bundle_mb: int = Field(default=16384, ge=1)
    """A download larger than this is refused (a server cannot fill the disk)."""
    reserve_mb: int = Field(default=64, ge=0)
    """Free space that must remain after staging a release beside the running one."""
    trial_backend: Literal["auto", "tensorrt", "onnxruntime"] = "auto"
    """The backend the trial loads the new engines with (as ``engines.backend``)."""
    cpu_threads: int = Field(default=2, ge=1, le=64)
    """ONNX Runtime threads during the trial."""
    control_socket: Optional[ConfigPath] = None
    """The daemon's control socket: when set and a daemon listens, it is told to load the new release
    (``engines.reload``) and its failure fails the trial. None: the daemon takes it at its next start."""
    daemon_timeout_s: float = Field(default=120.0, gt=0)
    """How long the daemon may take to load and warm a release."""
    download_retries: int = Field(default=3, ge=0, le=100)
    """Times a broken download is resumed before giving up (a partial file is kept for the next run)."""
    platform: PlatformConfig = PlatformConfig()
    """The device, for the compatibility check."""

    @property
    def releases_dir(self) -> Path:
        return self.releases if self.releases is not None else self.root / "releases"

    @property
    def downloads_dir(self) -> Path:
        return self.downloads if self.downloads is not None else self.root.parent / "ota" / "downloads"


def parse_ota_config(data: dict, *, source: str, base_dir: Optional[Path]) -> OtaConfig:
    try:
        return OtaConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise validation_error(exc, source) from None


def load_ota_config(path: Path) -> OtaConfig:
    """Read and validate; ``ConfigError`` (exit 78) naming the file and field."""
    path = Path(path)
    return parse_ota_config(read_toml(path, "OTA config"), source=str(path), base_dir=path.resolve().parent)
