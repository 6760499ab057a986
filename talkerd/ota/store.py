"""The release store on the kiosk: one folder per release, the ``current`` link, the state file, the lock.

    <root>/current -> releases/<version>      the active release (switched by renaming a new link over it)
    <root>/state.json                         highest version installed, committed, factory, trial
    <root>/.lock                              one installer at a time (flock)
    <releases>/<version>/                     a complete release: bundle.json (the signed manifest),
                                              bundle.sig, engines/…, models/…
    <releases>/.staging-<version>/            a release being written (never trusted; removed by recover)

A release folder gets its final name only once every file in it and every folder has been fsynced,
so a folder named by a plain version number is complete. ``state.json`` is replaced atomically.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Iterator, List, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..engines.files import sha256_file
from .errors import BundleRejected, Locked, StoreError
from .fileio import FileLayer
from .manifest import BundleManifest, ENGINES_DIR, parse_manifest

STATE_FILE = "state.json"
CURRENT = "current"
LOCK_FILE = ".lock"
MANIFEST_NAME = "bundle.json"
SIGNATURES_NAME = "bundle.sig"
STAGING_PREFIX = ".staging-"
PRUNE_PREFIX = ".prune-"
DERIVED_SUFFIXES = (".engine", ".engine.json", ".cache")
DERIVED_NAMES = ("sha256-cache.json",)
"""Files the device itself adds under ``engines/`` (built TensorRT engines and sidecars, timing caches,
the sha256 cache): allowed in a release beside the bundle's files."""


class Trial(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    """The release on trial (``current`` may already point at it)."""
    previous: Optional[int]
    """The release to go back to if the trial does not pass; None on a first install."""


class StoreState(BaseModel):
    """``state.json``: the installer's memory across crashes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = 1
    highest_version: int = Field(default=0, ge=0)
    """The highest bundle version ever committed here: anything not above it is refused (rollback)."""
    committed: Optional[int] = None
    """The release that passed its trial and is (or must be) active."""
    factory: Optional[int] = None
    """The release the kiosk was installed with; never pruned."""
    trial: Optional[Trial] = None
    """Set from before the switch until the trial's end: found set at a start, it was interrupted."""


class Store:
    """Paths and the atomic operations on them; all writes go through ``layer``."""

    def __init__(self, root: Path, releases: Path, layer: FileLayer) -> None:
        self.root = Path(root)
        self.releases = Path(releases)
        self.layer = layer

    # -- paths ------------------------------------------------------------------------------------
    @property
    def current_link(self) -> Path:
        return self.root / CURRENT

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def release_dir(self, version: int) -> Path:
        return self.releases / str(version)

    def staging_dir(self, version: int) -> Path:
        return self.releases / f"{STAGING_PREFIX}{version}"

    def ensure_dirs(self) -> None:
        for path in (self.root, self.releases):
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                self.layer.fsync_dir(path.parent)

    # -- the lock ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One installer at a time; ``Locked`` at once if another holds the lock (it is not waited for)."""
        self.ensure_dirs()
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Locked(f"another talkerd-ota holds {self.root / LOCK_FILE}; try again when it is done") from None
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- state ------------------------------------------------------------------------------------
    def read_state(self) -> StoreState:
        try:
            return StoreState.model_validate_json(self.state_path.read_bytes())
        except FileNotFoundError:
            return StoreState()
        except (OSError, ValidationError) as exc:
            raise StoreError(f"{self.state_path}: unreadable ({str(exc).splitlines()[0]}); "
                             "it is only ever replaced atomically, so the disk may be damaged") from None

    def write_state(self, state: StoreState) -> None:
        self.layer.write_durable(self.state_path, (state.model_dump_json(indent=2) + "\n").encode())

    # -- the current link -------------------------------------------------------------------------
    def current_version(self) -> Optional[int]:
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.current_link}: not a link ({exc.strerror})") from None
        name = Path(target).name
        return int(name) if name.isdigit() else None

    def _link_target(self, version: int) -> str:
        target = self.release_dir(version)
        try:
            return os.path.relpath(target, self.root) if target.resolve().is_relative_to(self.root.resolve()) else str(target)
        except ValueError:
            return str(target)

    def switch(self, version: Optional[int]) -> None:
        """Point ``current`` at ``version`` by renaming a new link over it (atomic), or remove it (None)."""
        if self.current_version() == version and (version is None or self.current_link.is_symlink()):
            return
        new = self.root / f".{CURRENT}.new"
        if new.is_symlink() or new.exists():
            self.layer.unlink(new)
        if version is None:
            self.layer.unlink(self.current_link)
        else:
            self.layer.symlink(self._link_target(version), new)
            self.layer.rename(new, self.current_link)
        self.layer.fsync_dir(self.root)

    # -- releases ---------------------------------------------------------------------------------
    def versions(self) -> List[int]:
        """Versions with a complete release folder, oldest first."""
        if not self.releases.is_dir():
            return []
        return sorted(int(p.name) for p in self.releases.iterdir() if p.name.isdigit() and p.is_dir())

    def leftovers(self) -> List[Path]:
        """Folders of an install or a prune that did not finish (never trusted, safe to remove)."""
        if not self.releases.is_dir():
            return []
        return sorted(p for p in self.releases.iterdir() if p.name.startswith((STAGING_PREFIX, PRUNE_PREFIX)))

    def remove_release(self, version: int) -> None:
        """Rename the folder out of the versions first, so a crash halfway through leaves no
        half-deleted folder that looks like a release."""
        doomed = self.releases / f"{PRUNE_PREFIX}{version}"
        if doomed.exists():
            self.layer.remove_tree(doomed)
        self.layer.rename(self.release_dir(version), doomed)
        self.layer.fsync_dir(self.releases)
        self.layer.remove_tree(doomed)

    def manifest(self, version: int) -> BundleManifest:
        """The signed manifest a release was installed from."""
        path = self.release_dir(version) / MANIFEST_NAME
        try:
            return parse_manifest(path.read_bytes())
        except (OSError, BundleRejected) as exc:
            raise StoreError(f"release {version}: {path} unreadable: {getattr(exc, 'message', exc)}") from None

    def problems(self, version: int, *, full: bool = True) -> List[str]:
        """Why release ``version`` is not complete and intact (empty: it is)."""
        return folder_problems(self.release_dir(version), full=full)


def folder_problems(folder: Path, *, full: bool = True) -> List[str]:
    """Why the release in ``folder`` is not complete and intact (empty: it is): every file of its
    signed manifest present with its size (and, with ``full``, its sha256), nothing else but the
    device's own derived files."""
    try:
        manifest = parse_manifest((folder / MANIFEST_NAME).read_bytes())
    except (OSError, BundleRejected) as exc:
        return [f"{folder / MANIFEST_NAME} unreadable: {getattr(exc, 'message', exc)}"]
    found = []
    listed = {f.path for f in manifest.files}
    for entry in manifest.files:
        path = folder / entry.path
        try:
            size = path.stat().st_size
        except OSError:
            found.append(f"{entry.path} missing")
            continue
        if size != entry.size:
            found.append(f"{entry.path}: {size} bytes, {entry.size} expected")
        elif full and sha256_file(path) != entry.sha256:
            found.append(f"{entry.path}: sha256 differs")
    for path in _files_under(folder):
        relative = path.relative_to(folder).as_posix()
        if relative in listed or relative in (MANIFEST_NAME, SIGNATURES_NAME) or _derived(relative):
            continue
        found.append(f"{relative}: not part of the release")
    return found


def _derived(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return relative.startswith(ENGINES_DIR + "/") and (name in DERIVED_NAMES or name.endswith(DERIVED_SUFFIXES))


def _files_under(folder: Path) -> List[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


def describe_release(store: Store, version: int) -> dict:
    """A JSON-ready summary of one release for ``status`` and ``list``."""
    try:
        manifest = store.manifest(version)
    except StoreError as exc:
        return {"version": version, "error": exc.message}
    return {"version": version, "created": manifest.created.isoformat(), "expires": manifest.expires.isoformat(),
            "engines": [e.name for e in manifest.engines], "models": dict(manifest.models),
            "files": len(manifest.files), "bytes": manifest.total_bytes, "notes": manifest.notes}


def state_summary(store: Store) -> dict:
    state = store.read_state()
    return json.loads(state.model_dump_json()) | {"current": store.current_version(), "releases": store.versions()}
