"""The store's file layer: every change the installer makes to the disk goes through here.

Each change is one *step* (create a directory, write a file, fsync a file or a directory, rename,
link, unlink, remove a directory), and ``on_step(kind, path)`` is called before it runs. That hook is
what the crash tests use: they kill the process at step *n*, or end a simulated power cut there
(``tests/ota_disk.py`` models which writes a power cut loses: those not yet fsynced). ``space_left``
lets a test model a disk that fills up. The real layer needs neither: ``FileLayer()`` is the disk.

Durability rule the installer follows: a file is fsynced after it is written, and the directory
holding a new, renamed or removed entry is fsynced after the change, before anything relies on it.
"""
from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Optional

STEP_KINDS = ("mkdir", "write", "fsync", "fsync_dir", "rename", "symlink", "unlink", "rmdir")
"""Every kind of step; the crash tests count crash points per kind."""


class FileLayer:
    """Writes, fsyncs and renames, one step each; ``on_step`` runs before every step."""

    def __init__(self, on_step: Optional[Callable[[str, Path], None]] = None) -> None:
        self.on_step = on_step
        self.steps = 0

    def _step(self, kind: str, path: Path) -> None:
        self.steps += 1
        if self.on_step is not None:
            self.on_step(kind, Path(path))

    # -- space ------------------------------------------------------------------------------------
    def free_bytes(self, path: Path) -> int:
        """Free bytes on the file system holding ``path`` (for the unprivileged user)."""
        return shutil.disk_usage(path).free

    def _reserve(self, path: Path, size: int) -> None:
        """Hook for a disk that fills up; the real disk says ENOSPC by itself."""

    # -- steps ------------------------------------------------------------------------------------
    def mkdir(self, path: Path) -> None:
        self._step("mkdir", path)
        os.mkdir(path, 0o755)

    def write_file(self, path: Path, chunks: Iterable[bytes], mode: int = 0o644) -> int:
        """Create ``path`` (it must not exist) from ``chunks``; returns the bytes written. Not durable
        until ``fsync`` (and its directory's ``fsync_dir`` for the name)."""
        self._step("write", path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        written = 0
        try:
            for chunk in chunks:
                self._reserve(path, len(chunk))
                view = memoryview(chunk)
                while view:
                    done = os.write(fd, view)
                    view = view[done:]
                written += len(chunk)
        finally:
            os.close(fd)
        return written

    def fsync(self, path: Path) -> None:
        self._step("fsync", path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_dir(self, path: Path) -> None:
        self._step("fsync_dir", path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, source: Path, target: Path) -> None:
        """Atomic replace of ``target`` by ``source`` (same file system)."""
        self._step("rename", target)
        os.replace(source, target)

    def symlink(self, target: str, path: Path) -> None:
        self._step("symlink", path)
        os.symlink(target, path)

    def unlink(self, path: Path) -> None:
        self._step("unlink", path)
        os.unlink(path)

    def rmdir(self, path: Path) -> None:
        self._step("rmdir", path)
        os.rmdir(path)

    # -- compositions -----------------------------------------------------------------------------
    def write_durable(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data`` atomically and durably: temporary file, fsync, rename, fsync
        of the directory. After a crash the file is the old one or the new one, never a mix."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        if tmp.exists() or tmp.is_symlink():
            self.unlink(tmp)
        self.write_file(tmp, [data])
        self.fsync(tmp)
        self.rename(tmp, path)
        self.fsync_dir(path.parent)

    def remove_tree(self, path: Path) -> None:
        """Remove a folder and everything in it, deepest first, then fsync its parent."""
        path = Path(path)
        if path.is_symlink() or not path.is_dir():
            self.unlink(path)
        else:
            for root, dirs, files in os.walk(path, topdown=False):
                for name in files:
                    self.unlink(Path(root) / name)
                for name in dirs:
                    entry = Path(root) / name
                    (self.unlink if entry.is_symlink() else self.rmdir)(entry)
            self.rmdir(path)
        self.fsync_dir(path.parent)


def no_space(path: Path) -> OSError:
    """The error a full disk gives, for layers that model one."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
