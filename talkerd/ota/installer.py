"""Install, roll back and recover: the procedures on the release store, each under the store's lock.

Install, in order (nothing on disk changes before step 4, and a rejection before it changes nothing):
 1. the bundle's signatures against the trust root, then its manifest;
 2. policy: not expired, newer than anything committed (or a signed downgrade), fits this device;
 3. every file's size and sha256, read from the bundle without writing anything; free disk space;
 4. staging in ``<releases>/.staging-<v>``: each file written and fsynced, each folder fsynced;
    TensorRT engines built for this device when the bundle carries only ONNX; the staged files checked;
 5. the folder renamed to ``<releases>/<v>`` (complete from then on), its parent fsynced;
 6. ``state.json`` records the trial (new and previous release), then ``current`` is switched;
 7. the trial (engines warmed and checked against the bundle, then the daemon told to load them):
    passed → ``state.json`` commits the release, older releases are pruned; failed → ``current`` back
    to the previous release, the trial's folder removed, the daemon told again.
A crash anywhere leaves either no trial in ``state.json`` (the old release is active and complete) or
a trial, which ``recover`` (run before the daemon starts and by every installer) rolls back.
"""
from __future__ import annotations

import datetime
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..engines.manifest import MANIFEST_FILE
from . import trial as trials
from .bundle import Header, iter_payload, read_header, verify
from .config import OtaConfig
from .daemon_link import tell_daemon
from .device import Platform, detect
from .errors import BundleRejected, NoRelease, NoSpace, PolicyRefused, StoreError, TrialFailed
from .fileio import FileLayer
from .keys import TrustRoot, check_signatures, load_trust, trust_json
from .manifest import ENGINES_DIR, BundleManifest, check_contents, check_engine_manifests
from .onboard import build_missing_engines
from .recovery import recover_store
from .store import MANIFEST_NAME, SIGNATURES_NAME, Store, StoreState, Trial, folder_problems

log = logging.getLogger(__name__)

ROTATED_TRUST = "trust.json"
MIB = 1 << 20


@dataclass(frozen=True)
class Refusal:
    """One reason a genuine bundle must not be installed here."""

    code: str
    """``expired``, ``not_newer`` or ``incompatible``."""
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Inspection:
    """What a bundle is and whether it would install here (``info``)."""

    header: Header
    refusals: List[Refusal]
    """Policy reasons it would be refused here (empty: it would install)."""
    platform: Platform


@dataclass(frozen=True)
class InstallResult:
    version: int
    previous: Optional[int]
    built: List[str] = field(default_factory=list)
    pruned: List[int] = field(default_factory=list)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Installer:
    """The store's procedures. ``layer`` is the disk (tests pass one that crashes or fills up)."""

    def __init__(self, cfg: OtaConfig, *, layer: Optional[FileLayer] = None, platform: Optional[Platform] = None,
                 now: Callable[[], datetime.datetime] = _utcnow, progress: Callable[[str], None] = lambda line: None) -> None:
        self.cfg = cfg
        self.layer = layer if layer is not None else FileLayer()
        self.store = Store(cfg.root, cfg.releases_dir, self.layer)
        self._platform = platform
        self.now = now
        self.progress = progress

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            self._platform = detect(self.cfg.platform)
        return self._platform

    # -- trust ------------------------------------------------------------------------------------
    def trust(self) -> TrustRoot:
        """The pinned root, or the root a later bundle rotated to (only ever a higher version)."""
        pinned = load_trust(self.cfg.trust)
        rotated_path = self.cfg.root / ROTATED_TRUST
        if rotated_path.is_file():
            rotated = load_trust(rotated_path)
            if rotated.version > pinned.version:
                return rotated
        return pinned

    # -- checks that change nothing ---------------------------------------------------------------
    def refusals(self, manifest: BundleManifest, state: StoreState) -> List[Refusal]:
        """Why this genuine bundle must not be installed here (empty: it may)."""
        found = []
        if self.now() >= manifest.expires:
            found.append(Refusal("expired", f"the bundle expired at {manifest.expires.isoformat()}"))
        installed = state.committed
        if manifest.version <= state.highest_version:
            allowed = (manifest.downgrade_from is not None and installed is not None
                       and manifest.version != installed and installed <= manifest.downgrade_from)
            if not allowed:
                found.append(Refusal("not_newer", f"version {manifest.version} is not newer than version "
                                     f"{state.highest_version}, the highest installed here (a downgrade must be "
                                     "signed as one: downgrade_from)"))
        if manifest.version in self.store.versions():
            found.append(Refusal("not_newer", f"release {manifest.version} is already kept here (talkerd-ota "
                                 f"rollback --to {manifest.version} makes it active)"))
        platform = self.platform
        for problem in manifest.compatibility.problems(platform.tensorrt, platform.compute_capability, platform.jetpack):
            found.append(Refusal("incompatible", problem))
        return found

    @staticmethod
    def verified(path: Path, trust: TrustRoot) -> Header:
        """The bundle checked completely (signatures, every file, the engines' own manifests); writes nothing."""
        header, engine_manifests = verify(path, trust, keep=lambda p: p.startswith(ENGINES_DIR + "/") and p.endswith("/" + MANIFEST_FILE))
        check_contents(header.manifest)
        check_engine_manifests(header.manifest, engine_manifests)
        return header

    def inspect(self, path: Path) -> Inspection:
        """Verify a bundle completely and say whether it would install; writes nothing."""
        header = self.verified(path, self.trust())
        return Inspection(header, self.refusals(header.manifest, self.store.read_state()), self.platform)

    def _check_rotation(self, header: Header, trust: TrustRoot) -> None:
        new = header.manifest.trust
        if new is None:
            return
        if new.version <= trust.version:
            raise BundleRejected(f"the bundle's trust root version {new.version} is not above the current "
                                 f"{trust.version}", code="bad_signature")
        check_signatures(new, header.signatures, header.manifest_bytes, what="bundle (its new trust root)")

    def _check_space(self, manifest: BundleManifest) -> None:
        needed = manifest.total_bytes + self.cfg.reserve_mb * MIB
        free = self.layer.free_bytes(self.store.releases)
        if needed > free:
            raise NoSpace(f"not enough disk space in {self.store.releases}: the release needs "
                          f"{manifest.total_bytes / MIB:.1f} MiB beside the running one, plus a reserve of "
                          f"{self.cfg.reserve_mb} MiB; {free / MIB:.1f} MiB free")

    # -- install ----------------------------------------------------------------------------------
    def install(self, path: Path) -> InstallResult:
        with self.store.locked():
            recover_store(self.store)
            trust = self.trust()
            self.progress("checking the signature and every file")
            header = self.verified(path, trust)
            manifest = header.manifest
            self._check_rotation(header, trust)
            state = self.store.read_state()
            refusals = self.refusals(manifest, state)
            if refusals:
                raise PolicyRefused(f"bundle version {manifest.version} refused: " + "; ".join(map(str, refusals)),
                                    code=refusals[0].code)
            self._check_space(manifest)
            built = self._stage(path, trust, header)
            return self._switch_and_try(manifest, state, built)

    def _stage(self, path: Path, trust: TrustRoot, header: Header) -> List[str]:
        version = header.manifest.version
        staging = self.store.staging_dir(version)
        self.progress(f"staging release {version} in {staging}")
        try:
            self.layer.mkdir(staging)
            created = [staging]
            with Path(path).open("rb") as handle:
                again = read_header(handle, trust)
                if again.manifest_bytes != header.manifest_bytes:
                    raise BundleRejected(f"{path} changed while it was being installed", code="bad_format")
                for entry, chunks in iter_payload(handle, again.manifest):
                    target = staging / entry.path
                    created += self._make_parents(staging, target.parent)
                    self.layer.write_file(target, chunks)
                    self.layer.fsync(target)
            self.layer.write_file(staging / MANIFEST_NAME, [header.manifest_bytes])
            self.layer.fsync(staging / MANIFEST_NAME)
            self.layer.write_file(staging / SIGNATURES_NAME, [b"".join(k + s for k, s in header.signatures)])
            self.layer.fsync(staging / SIGNATURES_NAME)
            built = build_missing_engines(staging, header.manifest, self.platform, self.layer,
                                          self.cfg.cpu_threads, self.progress)
            for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
                self.layer.fsync_dir(folder)
            problems = folder_problems(staging)
            if problems:
                raise BundleRejected(f"staged release {version} does not match its manifest: {'; '.join(problems[:3])}",
                                     code="hash_mismatch")
            self.layer.rename(staging, self.store.release_dir(version))
            self.layer.fsync_dir(self.store.releases)
        except OSError as exc:
            self._discard(staging)
            if exc.errno == errno.ENOSPC:
                raise NoSpace(f"the disk filled up while staging release {version} in {staging}; "
                              "nothing was changed (the staged files are removed)") from None
            raise StoreError(f"cannot stage release {version} in {staging}: {exc.strerror or exc}") from None
        except BaseException:
            self._discard(staging)
            raise
        return built

    def _make_parents(self, staging: Path, folder: Path) -> List[Path]:
        missing = []
        while folder != staging and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            self.layer.mkdir(path)
        return missing

    def _discard(self, staging: Path) -> None:
        if staging.exists():
            try:
                self.layer.remove_tree(staging)
            except OSError as exc:  # recover removes it at the next run
                log.warning("could not remove %s: %s", staging, exc)

    def _switch_and_try(self, manifest: BundleManifest, state: StoreState, built: List[str]) -> InstallResult:
        version, previous = manifest.version, self.store.current_version()
        self.store.write_state(state.model_copy(update={"trial": Trial(version=version, previous=previous)}))
        self.store.switch(version)
        self.progress(f"release {version} active; on trial")
        problems = self._trial(version, manifest)
        if problems:
            self._undo_trial(version, previous)
            raise TrialFailed(f"release {version} failed its trial and was rolled back to "
                              f"{previous if previous is not None else 'no release'}: {'; '.join(problems)}")
        if manifest.trust is not None:  # validly signed by both roots: adopted whatever happens next
            self.layer.write_durable(self.cfg.root / ROTATED_TRUST, trust_json(manifest.trust))
        committed = state.model_copy(update={
            "trial": None, "committed": version, "highest_version": max(state.highest_version, version),
            "factory": state.factory if state.factory is not None else version})
        self.store.write_state(committed)
        pruned = self._prune(committed)
        self.progress(f"release {version} committed")
        return InstallResult(version, previous, built, pruned)

    def _trial(self, version: int, manifest: BundleManifest) -> List[str]:
        """The new release's problems: its engines against the bundle, then the daemon on it."""
        try:
            problems = trials.check_release(self.store.release_dir(version), manifest, self.cfg.trial_backend,
                                            self.cfg.cpu_threads)
            if not problems:
                failure = tell_daemon(self.cfg.control_socket, self.cfg.daemon_timeout_s)
                problems = [failure] if failure else []
        except Exception as exc:  # a runtime's own failure (ONNX Runtime, TensorRT) fails the trial, no more
            log.exception("trial of release %s", version)
            problems = [f"the trial failed: {type(exc).__name__}: {exc}"]
        return problems

    def _undo_trial(self, version: int, previous: Optional[int]) -> None:
        self.store.switch(previous)
        state = self.store.read_state()
        self.store.write_state(state.model_copy(update={"trial": None}))
        if version in self.store.versions() and version not in (state.committed, state.factory):
            self.store.remove_release(version)
        failure = tell_daemon(self.cfg.control_socket, self.cfg.daemon_timeout_s)
        if failure:
            log.error("after the rollback to %s: %s", previous, failure)

    def _prune(self, state: StoreState) -> List[int]:
        protected = {state.committed, state.factory, self.store.current_version()}
        others = [v for v in reversed(self.store.versions()) if v not in protected]
        room = max(self.cfg.keep - 1, 0)
        doomed = others[room:]
        for version in doomed:
            self.store.remove_release(version)
        return doomed

    # -- rollback ---------------------------------------------------------------------------------
    def rollback(self, to: Optional[int] = None) -> int:
        """Make an older kept release (the newest intact one, or ``to``) the committed one."""
        with self.store.locked():
            recover_store(self.store)
            state, current = self.store.read_state(), self.store.current_version()
            versions = self.store.versions()
            if to is not None:
                if to not in versions:
                    raise NoRelease(f"no release {to} here (releases: {', '.join(map(str, versions)) or 'none'})")
                candidates = [to]
            else:
                candidates = [v for v in reversed(versions) if current is None or v < current]
            for version in candidates:
                problems = self.store.problems(version)
                if problems:
                    log.warning("release %s is not intact: %s", version, "; ".join(problems[:3]))
                    continue
                self.store.switch(version)
                self.store.write_state(state.model_copy(update={"committed": version}))
                failure = tell_daemon(self.cfg.control_socket, self.cfg.daemon_timeout_s)
                if failure:
                    log.error("%s", failure)
                return version
            raise NoRelease(f"no intact release {'older than ' + str(current) if to is None else to} to roll back to")

    # -- recover ----------------------------------------------------------------------------------
    def recover(self, *, full: bool = False) -> List[str]:
        """Bring the store back to a committed, intact release after a crash; returns what was done.
        ``StoreError`` when the active release is damaged and no intact one is kept."""
        with self.store.locked():
            actions = recover_store(self.store, full=full)
            current = self.store.current_version()
            problems = self.store.problems(current, full=False) if current is not None else []
            if problems:
                raise StoreError(actions[-1])
            return actions
