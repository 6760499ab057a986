"""Where frames go: a fullscreen window, a video file, or nowhere.

``open_sink(mode, render_cfg)`` picks one and says why, in words for the log and status:
- ``window``: an OpenCV window on the X display. The display is probed over the X11 protocol first
  (xprobe.py): HighGUI aborts the process when it cannot open one, so it is never called blind.
- ``video:PATH``: an MP4 file (mp4v), written frame by frame.
- ``none``: frames are drawn and dropped (the benchmark; a kiosk with its screen off).
- ``auto``: the window when a display answers, else a video file in a known place, named in the reason.
"""
from __future__ import annotations

import enum
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ComponentUnavailable, ExitCode, TalkerError
from .xprobe import probe_display, read_screen

log = logging.getLogger(__name__)

WINDOW_TITLE = "talkerd"
CLOSE_TIMEOUT_S = 3.0
PAINT_CHECK_AFTER_S = 1.0
"""How long after a fullscreen window opens the screen is read back to check that it was painted."""
PAINT_REOPENS = 3
_CODECS = {".mp4": ("mp4v", "avc1"), ".m4v": ("mp4v",), ".avi": ("MJPG", "XVID"), ".mkv": ("mp4v", "MJPG")}


class DisplayModeError(TalkerError):
    """The ``--display`` value is not one of auto, window, video:PATH, none."""

    code = "bad_display_mode"
    exit_code = ExitCode.USAGE


class DisplayMode(str, enum.Enum):
    AUTO = "auto"
    """A window when a display is usable, else a video file."""
    WINDOW = "window"
    """A window, or no picture when there is no display."""
    VIDEO = "video"
    NONE = "none"


@dataclass(frozen=True)
class DisplayChoice:
    """Where the avatar is shown (``--display``), parsed once at the edge."""

    mode: DisplayMode
    video_path: Path | None = None
    """The file for ``video:PATH``."""

    @classmethod
    def parse(cls, value: str) -> "DisplayChoice":
        """``auto | window | video:PATH | none``; ``DisplayModeError`` naming what is wrong."""
        if value.startswith("video:"):
            path = value[len("video:") :]
            if not path:
                raise DisplayModeError("--display video:PATH needs a file path after 'video:'")
            return cls(DisplayMode.VIDEO, Path(path).expanduser())
        try:
            return cls(DisplayMode(value))
        except ValueError:
            raise DisplayModeError(f"--display {value!r}: expected auto, window, video:PATH or none") from None

    def __str__(self) -> str:
        return f"video:{self.video_path}" if self.mode is DisplayMode.VIDEO else self.mode.value


class Sink(Protocol):
    """What the render loop hands frames to."""

    description: str
    offline: bool
    """True for sinks that take frames as fast as they come (files): the loop may pace by frame count."""

    def show(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Frames are drawn and dropped."""

    offline = False

    def __init__(self, description: str = "none") -> None:
        self.description = description
        self.frames = 0

    def show(self, frame: np.ndarray) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


class WindowSink:
    """A borderless OpenCV window placed at (0, 0) and sized to the frame, fullscreen when asked.

    Placing and sizing the window ourselves makes it cover the screen with or without a window
    manager (without one the fullscreen property is ignored). Must be used from the main thread.

    A fullscreen window is checked once, a second after it opens, by reading the screen back from
    the X server: Qt's HighGUI now and then misses its window's MapNotify on a busy machine without a
    window manager (the kiosk's screen) and then never paints it, leaving the screen black. A screen
    of one flat colour while the frames are not is such a window: another one is opened over it.
    """

    offline = False

    def __init__(self, size: tuple[int, int], *, fullscreen: bool = True, title: str = WINDOW_TITLE,
                 screen_reader=read_screen) -> None:
        status = probe_display()
        if not status.usable:
            raise ComponentUnavailable(f"display: {status.reason}")
        import cv2

        self._cv2, self.title, self.size, self._fullscreen = cv2, title, size, fullscreen
        # Fullscreen covers the whole screen even without a window manager: the window is sized to
        # the screen and HighGUI scales the frame into it (keeping its aspect ratio).
        self._window = status.screen if fullscreen and status.screen else size
        self._read_screen = screen_reader
        self._name = title
        """HighGUI's name of the window shown now: the title, numbered once another one was opened."""
        self.reopened = 0
        """How many times another window was opened because the screen showed none."""
        self._open()
        self.description = (f"window on {status.display} ({self._window[0]}x{self._window[1]}"
                            f"{', fullscreen' if fullscreen else ''}, frames {size[0]}x{size[1]})")

    def _open(self) -> None:
        cv2, name = self._cv2, self._name
        cv2.namedWindow(name, cv2.WINDOW_NORMAL | cv2.WINDOW_GUI_NORMAL)
        if self._fullscreen:
            cv2.setWindowProperty(name, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        cv2.moveWindow(name, 0, 0)
        cv2.resizeWindow(name, self._window[0], self._window[1])
        cv2.waitKey(1)
        # Only a fullscreen window is known to be where the screen is read (0, 0, its size).
        self._check_at = time.monotonic() + PAINT_CHECK_AFTER_S if self._fullscreen else None

    def show(self, frame: np.ndarray) -> None:
        self._cv2.imshow(self._name, frame)
        self._cv2.waitKey(1)  # HighGUI draws only while it handles its events
        if self._check_at is not None and time.monotonic() >= self._check_at:
            self._check_painted(frame)

    def _check_painted(self, frame: np.ndarray) -> None:
        self._check_at = None
        shown = self._read_screen(*self._window)
        if shown is None or _flat(frame) or not _flat(shown):
            return  # painted (or it cannot be told: no screen to read, or a frame of one colour)
        if self.reopened == PAINT_REOPENS:
            log.error("the window %r is still not painted after %d windows; the screen stays %s",
                      self.title, PAINT_REOPENS + 1, tuple(int(v) for v in shown[0, 0]))
            return
        self.reopened += 1
        log.warning("the window %r was never painted (the screen is one flat colour); opening another (%d of %d)",
                    self.title, self.reopened, PAINT_REOPENS)
        # The new window opens over the old one before that one goes: with no window left HighGUI
        # stops handling events, and a window opened then is often never mapped at all.
        old, self._name = self._name, f"{self.title} ({self.reopened + 1})"
        self._open()
        self._cv2.imshow(self._name, frame)
        self._close(old)

    def close(self) -> None:
        self._close(self._name)

    def _close(self, name: str) -> None:
        """Destroy the window and handle HighGUI's events until it is really gone: a window opened
        again under the same name before that would be the dying one, and would never be painted."""
        self._cv2.destroyWindow(name)
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while time.monotonic() < deadline:
            self._cv2.waitKey(10)
            try:
                if self._cv2.getWindowProperty(name, self._cv2.WND_PROP_VISIBLE) < 1:
                    return
            except self._cv2.error:  # Qt: no such window any more
                return
        log.warning("the window %r did not close within %.0f s", name, CLOSE_TIMEOUT_S)


def _flat(image: np.ndarray) -> bool:
    """Every pixel of a sparse grid is the same colour."""
    grid = image[::8, ::8].reshape(-1, image.shape[-1])
    return bool((grid == grid[0]).all())


class VideoSink:
    """Frames into a video file; after ``segment_s`` seconds of video the file starts afresh and the
    finished one is kept beside it as ``NAME.prev.EXT`` (bounded disk use on a kiosk that runs for weeks)."""

    offline = True

    def __init__(self, path: str | os.PathLike, fps: int, size: tuple[int, int], *, segment_s: float | None = None) -> None:
        import cv2

        self._cv2 = cv2
        self.path = Path(path)
        self.fps, self.size = fps, (int(size[0]), int(size[1]))
        self._segment_frames = int(segment_s * fps) if segment_s else None
        self._frames = 0
        self.frames_written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ComponentUnavailable(f"video {self.path}: cannot create its folder: {exc.strerror}") from None
        self._writer = self._open()
        self.description = f"video {self.path} ({self.size[0]}x{self.size[1]} at {fps} fps, {self.codec})"
        self._soundtrack = None

    def add_soundtrack(self, rate: int):
        """A ``Soundtrack`` whose ``write`` takes the audio that goes with this video (see soundtrack.py)."""
        from .soundtrack import Soundtrack

        self._soundtrack = Soundtrack(self.path, rate, lambda: self._frames / self.fps)
        return self._soundtrack

    def _open(self):
        codecs = _CODECS.get(self.path.suffix.lower())
        if codecs is None:
            raise ComponentUnavailable(f"video {self.path}: unknown extension; use one of {', '.join(sorted(_CODECS))}")
        for codec in codecs:
            writer = self._cv2.VideoWriter(str(self.path), self._cv2.VideoWriter_fourcc(*codec), float(self.fps), self.size)
            if writer.isOpened():
                self.codec = codec
                return writer
            writer.release()
        raise ComponentUnavailable(f"video {self.path}: cannot write it (tried codecs {', '.join(codecs)})")

    def show(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = self._cv2.resize(frame, self.size, interpolation=self._cv2.INTER_AREA)
        if self._segment_frames and self._frames >= self._segment_frames:
            self._rotate()
        self._writer.write(frame)
        self._frames += 1
        self.frames_written += 1

    def _rotate(self) -> None:
        self._writer.release()
        previous = self.path.with_name(f"{self.path.stem}.prev{self.path.suffix}")
        os.replace(self.path, previous)
        log.info("video segment done: %s (%d frames); starting %s afresh", previous, self._frames, self.path)
        # The new file's length is 0 before its sound starts: the playout's thread may write the next
        # block at any moment, and that block's WAV is padded to the video's length so far.
        self._frames = 0
        if self._soundtrack is not None:
            self._soundtrack.finish(previous, wait=False)
        self._writer = self._open()

    def close(self) -> None:
        self._writer.release()
        if self._soundtrack is not None:
            self._soundtrack.finish(self.path, wait=True)


def default_video_path(render_cfg) -> Path:
    """Where ``auto`` writes the video when there is no display."""
    if getattr(render_cfg, "video_path", None):
        return Path(render_cfg.video_path)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "talkerd" / "avatar.mp4" if runtime else Path(tempfile.gettempdir()) / "talkerd-avatar.mp4"


def _size(render_cfg) -> tuple[int, int]:
    return (render_cfg.width, render_cfg.height)


def _video(render_cfg, path: Path) -> VideoSink:
    return VideoSink(path, render_cfg.fps, _size(render_cfg), segment_s=getattr(render_cfg, "video_segment_s", None))


def _open_window(render_cfg) -> tuple[Sink, str]:
    status = probe_display()
    if not status.usable:
        # An explicit window request on a machine without a display: carry on without the picture.
        reason = f"window asked for but {status.reason}: the avatar is not shown"
        log.warning("%s", reason)
        return NullSink("none (no display)"), reason
    sink = WindowSink(_size(render_cfg), fullscreen=render_cfg.fullscreen)
    return sink, f"display {status.display}: {sink.description}"


def _open_auto(render_cfg) -> tuple[Sink, str]:
    status = probe_display()
    if status.usable:
        try:
            sink = WindowSink(_size(render_cfg), fullscreen=render_cfg.fullscreen)
            return sink, f"display {status.display}: {sink.description}"
        except ComponentUnavailable as exc:
            status_reason = exc.message
    else:
        status_reason = status.reason
    sink = _video(render_cfg, default_video_path(render_cfg))
    return sink, f"no display ({status_reason}): writing video to {sink.path}"


def _open_none(render_cfg) -> tuple[Sink, str]:
    return NullSink(), "display off: frames are drawn and dropped"


def _open_video(render_cfg, path: Path) -> tuple[Sink, str]:
    sink = _video(render_cfg, path)
    return sink, f"writing video to {sink.path}"


_OPENERS = {
    DisplayMode.AUTO: lambda cfg, choice: _open_auto(cfg),
    DisplayMode.WINDOW: lambda cfg, choice: _open_window(cfg),
    DisplayMode.VIDEO: lambda cfg, choice: _open_video(cfg, choice.video_path),
    DisplayMode.NONE: lambda cfg, choice: _open_none(cfg),
}


def open_sink(choice: DisplayChoice | str, render_cfg) -> tuple[Sink, str]:
    """The sink for ``choice`` (a ``DisplayChoice``, or its text) and a sentence saying why.

    Raises ``DisplayModeError`` for an unknown mode and ``ComponentUnavailable`` for a video file
    that cannot be written; a missing display is never an error (auto falls back to a video file,
    window to no picture).
    """
    if isinstance(choice, str):
        choice = DisplayChoice.parse(choice)
    return _OPENERS[choice.mode](render_cfg, choice)
