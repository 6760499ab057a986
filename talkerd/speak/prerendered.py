"""Pre-rendered speech: the clauses of the fixed answers (curated answers, the unknown answer, the
apology, the greeting, facts spoken as written) synthesised with their mouth tracks ahead of time, so
that they play the moment they are decided instead of after the voice's first chunk.

The cache lives in memory (counted in the memory plan as ``speech_cache``, at most ``tts.prerender_mb``)
and, with ``tts.prerender_dir``, on disk: one file per clause, named by a hash of the clause's text and
of the voice (engine versions and every setting that changes the sound), so a restart loads them instead
of synthesising again and a changed voice never plays an old recording. The speech worker fills it while
it has nothing to say (``SpeechMaker.prerender_one``), at start and after each reload.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import zipfile
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIB = 1024 * 1024
FILE_SUFFIX = ".speech.npz"


@dataclass(frozen=True)
class RenderedPiece:
    """One chunk of a clause as the voice made it: audio at the output rate and its mouth track."""

    audio: np.ndarray
    """int16 mono samples."""
    mouth: np.ndarray
    """float32 [frames, channels] at the renderer's frame rate."""


@dataclass(frozen=True)
class RenderedClause:
    pieces: tuple[RenderedPiece, ...]

    @property
    def nbytes(self) -> int:
        return sum(piece.audio.nbytes + piece.mouth.nbytes for piece in self.pieces)


def voice_key(parts: Iterable[object]) -> str:
    """A short hash of everything that changes how a text sounds and moves the mouth."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class SpeechCache:
    """Which fixed clauses are wanted, and the rendered ones (in memory, and on disk when it has a
    folder). Thread-safe: the speech worker fills it, the same worker and status read it."""

    def __init__(self, folder: Path | None, limit_mb: float) -> None:
        self._folder = folder
        self._limit = int(limit_mb * MIB)
        self._lock = threading.Lock()
        self._voice = ""
        self._wanted: tuple[str, ...] = ()
        self._pending: deque[str] = deque()
        self._clauses: dict[str, RenderedClause] = {}
        self.skipped = 0
        """Wanted clauses left out because the memory limit was reached."""

    # -- what is wanted ---------------------------------------------------------------------------
    def want(self, texts: Iterable[str]) -> None:
        """The fixed clauses of the current persona and venue (a reload replaces the list): those not
        rendered yet are queued, those no longer wanted are let go."""
        wanted = tuple(dict.fromkeys(text for text in texts if text.strip()))
        with self._lock:
            self._wanted = wanted
            self._clauses = {text: clause for text, clause in self._clauses.items() if text in wanted}
            self._pending = deque(text for text in wanted if text not in self._clauses)
            self.skipped = 0

    def set_voice(self, key: str) -> None:
        """A new voice (an engine update): every clause is rendered again in it."""
        with self._lock:
            if key == self._voice:
                return
            self._voice = key
            self._clauses = {}
            self._pending = deque(self._wanted)

    def next_wanted(self) -> str | None:
        with self._lock:
            return self._pending[0] if self._pending else None

    def give_up(self, text: str) -> None:
        """A clause the voice could not render: not tried again until the next reload."""
        with self._lock:
            if self._pending and self._pending[0] == text:
                self._pending.popleft()

    # -- rendered clauses -------------------------------------------------------------------------
    def get(self, text: str) -> RenderedClause | None:
        with self._lock:
            return self._clauses.get(text)

    def put(self, text: str, clause: RenderedClause, *, store: bool = True) -> None:
        """Keep a rendered clause in memory (within the limit) and, with ``store``, on disk."""
        with self._lock:
            if self._pending and self._pending[0] == text:
                self._pending.popleft()
            if text not in self._wanted:
                return  # a reload happened while it was being rendered
            if self._bytes() + clause.nbytes > self._limit:
                self.skipped += 1
                log.warning("speech cache: %d MiB limit reached; %r is synthesised when spoken",
                            self._limit // MIB, text[:60], extra={"stage": "tts"})
                return
            self._clauses[text] = clause
        if store and self._folder is not None:
            self._write(text, clause)

    def load(self, text: str) -> RenderedClause | None:
        """The clause from disk, rendered earlier in this voice; None when there is none or it is
        unreadable (then it is rendered again and the file replaced)."""
        path = self._path(text)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                count = int(data["count"])
                pieces = tuple(RenderedPiece(data[f"audio{i}"].astype(np.int16), data[f"mouth{i}"].astype(np.float32))
                               for i in range(count))
                if str(data["text"]) != text:
                    raise ValueError("it holds another text")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # torn or foreign: render again
            log.warning("speech cache: ignoring %s (%s)", path, exc, extra={"stage": "tts"})
            return None
        return RenderedClause(pieces)

    # -- figures ----------------------------------------------------------------------------------
    def status(self) -> dict:
        with self._lock:
            return {"wanted": len(self._wanted), "ready": len(self._clauses), "pending": len(self._pending),
                    "skipped": self.skipped, "mb": round(self._bytes() / MIB, 2)}

    def _bytes(self) -> int:
        return sum(clause.nbytes for clause in self._clauses.values())

    # -- disk -------------------------------------------------------------------------------------
    def _path(self, text: str) -> Path | None:
        if self._folder is None:
            return None
        name = hashlib.sha256(f"{self._voice}\0{text}".encode()).hexdigest()[:32]
        return self._folder / (name + FILE_SUFFIX)

    def _write(self, text: str, clause: RenderedClause) -> None:
        """Atomically (a temporary file renamed into place), so a power cut leaves no torn file."""
        path = self._path(text)
        arrays: dict[str, np.ndarray] = {"text": np.array(text), "count": np.array(len(clause.pieces))}
        for i, piece in enumerate(clause.pieces):
            arrays[f"audio{i}"], arrays[f"mouth{i}"] = piece.audio, piece.mouth
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
                handle.write(buffer.getvalue())
            os.replace(handle.name, path)
        except OSError as exc:  # a full or read-only disk: the clause still plays from memory
            log.warning("speech cache: cannot write %s: %s", path, exc, extra={"stage": "tts"})
