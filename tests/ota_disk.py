"""Stand-ins for what cannot be made on the development machine: a power cut, and a disk that fills up.

``PowerCutDisk`` is a file layer that does every step on the real disk and meanwhile keeps a model of
what is *durable*: a file's bytes only once it was fsynced, a folder's entries (names → inodes, links)
only once the folder was fsynced, as POSIX promises and no more. ``cut_at`` ends the world before step
*n*: every later step raises ``PowerCut``; ``power_cut()`` then rewrites the real tree as the durable
model has it — unsynced data gone (files empty), unsynced renames, creations and removals undone —
which is the disk a kiosk finds after the power comes back.
"""
from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Tuple

from talkerd.ota.fileio import FileLayer, no_space


class PowerCut(BaseException):
    """The power went at this step (a BaseException: nothing in the installer may carry on after it)."""


class StepRecorder(FileLayer):
    """The real disk, recording each step's kind (to count the crash points)."""

    def __init__(self) -> None:
        super().__init__(on_step=lambda kind, path: self.kinds.append((kind, str(path))))
        self.kinds = []


class FullDisk(FileLayer):
    """A disk with ``space`` bytes left: a write beyond it fails with ENOSPC, as a full disk does."""

    def __init__(self, space: int, free_reported: Optional[int] = None) -> None:
        super().__init__()
        self.space = space
        self.free_reported = free_reported

    def free_bytes(self, path: Path) -> int:
        return self.free_reported if self.free_reported is not None else super().free_bytes(path)

    def _reserve(self, path: Path, size: int) -> None:
        if size > self.space:
            raise no_space(path)
        self.space -= size


Entry = Tuple  # ("f", logical id) | ("d", logical id) | ("l", target)


class PowerCutDisk(FileLayer):
    def __init__(self, root: Path, cut_at: Optional[int] = None) -> None:
        super().__init__()
        self.root = Path(root)
        self.cut_at = cut_at
        self.cut = False
        self._ids = itertools.count(1)
        self._inode: Dict[Tuple[int, int], int] = {}
        self.data: Dict[int, bytes] = {}
        self.dirs: Dict[int, Dict[str, Entry]] = {}
        self._snapshot(self.root)  # what is on the disk now is durable

    # -- the model ----------------------------------------------------------------------------------
    def _id(self, path: Path, fresh: bool = False) -> int:
        stat = os.lstat(path)
        key = (stat.st_dev, stat.st_ino)
        if fresh or key not in self._inode:
            self._inode[key] = next(self._ids)
        return self._inode[key]

    def _entry(self, path: Path) -> Entry:
        if path.is_symlink():
            return ("l", os.readlink(path))
        return ("d", self._id(path)) if path.is_dir() else ("f", self._id(path))

    def _snapshot(self, folder: Path) -> None:
        self.dirs[self._id(folder)] = {p.name: self._entry(p) for p in folder.iterdir()}
        for path in folder.iterdir():
            if path.is_symlink():
                continue
            if path.is_dir():
                self._snapshot(path)
            else:
                self.data[self._id(path)] = path.read_bytes()

    def _step(self, kind: str, path: Path) -> None:
        if self.cut or (self.cut_at is not None and self.steps + 1 >= self.cut_at):
            self.cut = True
            raise PowerCut(f"power cut before step {self.steps + 1} ({kind} {path})")
        super()._step(kind, path)

    # -- steps: done for real, and the durable model updated where POSIX says it is ------------------
    def mkdir(self, path: Path) -> None:
        super().mkdir(path)
        self.dirs[self._id(path, fresh=True)] = {}

    def write_file(self, path: Path, chunks, mode: int = 0o644) -> int:
        written = super().write_file(path, chunks, mode)
        self._id(path, fresh=True)  # a new inode: no durable bytes yet
        return written

    def fsync(self, path: Path) -> None:
        super().fsync(path)
        self.data[self._id(path)] = Path(path).read_bytes()

    def fsync_dir(self, path: Path) -> None:
        super().fsync_dir(path)
        path = Path(path)
        self.dirs[self._id(path)] = {p.name: self._entry(p) for p in path.iterdir()}

    # -- the power cut --------------------------------------------------------------------------------
    def power_cut(self) -> None:
        """Replace the real tree under ``root`` with its durable state."""
        root_id = self._id(self.root)
        shutil.rmtree(self.root)
        self._rebuild(self.root, root_id)

    def _rebuild(self, folder: Path, dir_id: int) -> None:
        folder.mkdir()
        for name, entry in self.dirs.get(dir_id, {}).items():
            path = folder / name
            if entry[0] == "l":
                os.symlink(entry[1], path)
            elif entry[0] == "d":
                self._rebuild(path, entry[1])
            else:
                path.write_bytes(self.data.get(entry[1], b""))
