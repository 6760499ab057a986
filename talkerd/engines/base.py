"""The one runtime interface every inference backend implements.

An engine is created unloaded, ``load()`` allocates everything it needs, ``warm_up()`` runs it once on
zeros of the manifest's opt shapes (so the first real request does not pay for lazy initialisation),
``run(feeds)`` maps input names to arrays and returns output names to arrays, ``memory_bytes()`` says
what it holds, and ``close()`` releases it. Feeds are checked against the manifest's profile on every
backend, so development on ONNX Runtime rejects exactly what TensorRT would reject on the kiosk.
"""
from __future__ import annotations

import abc
from typing import Dict, Optional

import numpy as np

from .manifest import EngineManifest

Feeds = Dict[str, np.ndarray]


class Engine(abc.ABC):
    """An inference engine for one manifest on one backend."""

    backend: str = ""
    """"onnxruntime" or "tensorrt" (class attribute of each backend)."""

    def __init__(self, manifest: EngineManifest) -> None:
        self.manifest = manifest
        """The engine's manifest (inputs, outputs, profile)."""

    @property
    def name(self) -> str:
        """The engine's name (its folder under ``engines.dir``)."""
        return self.manifest.name

    @property
    def metadata(self) -> Dict[str, str]:
        """Facts about the engine for its user (the manifest's ``metadata`` table)."""
        return dict(self.manifest.metadata)

    @property
    def degraded(self) -> bool:
        """True once the engine has fallen back from its preferred backend."""
        return False

    @property
    def reason(self) -> Optional[str]:
        """Why the engine is degraded, or None."""
        return None

    @abc.abstractmethod
    def load(self) -> None:
        """Allocate the runtime's resources; ``EngineError`` when that fails."""

    def warm_up(self) -> None:
        """Run once on zeros of every input's opt shape."""
        self.run(self.manifest.zero_feeds("opt"))

    @abc.abstractmethod
    def run(self, feeds: Feeds) -> Feeds:
        """Inputs by name → outputs by name; ``EngineError`` for bad feeds or a failed run."""

    @abc.abstractmethod
    def memory_bytes(self) -> int:
        """Memory the engine holds now (host and device), in bytes."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything; the engine may not be used afterwards. Safe to call twice."""

    def status(self) -> dict:
        """A JSON-ready summary for ``talkerctl status``."""
        return {
            "name": self.name,
            "backend": self.backend,
            "degraded": self.degraded,
            "reason": self.reason,
            "memory_mb": round(self.memory_bytes() / (1 << 20), 1),
        }

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
