"""TensorRT with ONNX Runtime behind it: a failed TensorRT call is rerun on the CPU and the turn goes on.

The ONNX Runtime engine is created lazily, on the first failure. On a Jetson the CPU and GPU share one
memory, and an idle ONNX Runtime copy of every engine would hold a second set of weights that the
memory plan would have to pay for on every kiosk, all for a path that runs only after a fault. The
ONNX file is located and its sha256 checked when the engine is opened, so the fallback is known to be
possible before it is needed; its cost is one session load (about 0.3 s for the Piper voice) in the
turn that fails. After the switch the TensorRT engine is closed, which returns its device memory in
time for the CPU session.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from ..errors import EngineError
from .base import Engine, Feeds

log = logging.getLogger(__name__)


class FallbackEngine(Engine):
    """Runs ``primary`` until it raises, then reruns that call and all later ones on the fallback."""

    def __init__(self, primary: Engine, make_fallback: Callable[[], Engine]) -> None:
        super().__init__(primary.manifest)
        self._primary: Optional[Engine] = primary
        self._make_fallback = make_fallback
        self._fallback: Optional[Engine] = None
        self._reason: Optional[str] = None
        self._lock = threading.Lock()
        self.preferred = primary.backend
        """The backend the engine was meant to run on."""

    @property
    def backend(self) -> str:  # type: ignore[override]
        """The backend that serves calls now."""
        if self._fallback is not None:
            return self._fallback.backend
        return self._primary.backend if self._primary is not None else self.preferred

    @property
    def degraded(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> Optional[str]:
        return self._reason

    def load(self) -> None:
        if self._primary is not None:
            self._primary.load()

    def run(self, feeds: Feeds) -> Feeds:
        # A bad request is the caller's fault and would fail on any backend: no reason to degrade.
        self.manifest.check_feeds(feeds)
        with self._lock:
            primary = self._primary if self._reason is None else None
        if primary is not None:
            try:
                return primary.run(feeds)
            except Exception as exc:  # any TensorRT/CUDA failure: the turn must go on
                self._degrade(primary, exc)
        return self._ensure_fallback().run(feeds)

    def _degrade(self, primary: Engine, exc: Exception) -> None:
        with self._lock:
            if self._reason is not None:
                return
            self._reason = f"{primary.backend} failed: {exc}"
            log.error("engine %s degraded: %s; this and later calls run on ONNX Runtime", self.name, self._reason)
            self._primary = None
        try:
            primary.close()
        except Exception as close_exc:  # a broken CUDA context may fail to free; nothing more to do with it
            log.warning("engine %s: closing the failed %s engine also failed: %s", self.name, primary.backend,
                        close_exc)

    def _ensure_fallback(self) -> Engine:
        with self._lock:
            if self._fallback is None:
                try:
                    self._fallback = self._make_fallback()
                except EngineError as exc:
                    raise EngineError(f"engine {self.name}: {self._reason}; the ONNX Runtime fallback failed "
                                      f"too: {exc.message}") from exc
            return self._fallback

    def memory_bytes(self) -> int:
        total = 0
        for engine in (self._primary, self._fallback):
            if engine is not None:
                total += engine.memory_bytes()
        return total

    def status(self) -> dict:
        summary = super().status()
        summary["preferred"] = self.preferred
        return summary

    def close(self) -> None:
        with self._lock:
            engines = [e for e in (self._primary, self._fallback) if e is not None]
            self._primary = self._fallback = None
        for engine in engines:
            engine.close()
