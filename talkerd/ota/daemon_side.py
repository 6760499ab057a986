"""The daemon's side of OTA: which release its engines came from, and loading a new one.

The daemon has no OTA settings of its own: a kiosk's config names its engines and models through the
store's link, e.g. ``engines.dir = "/var/lib/talkerd/engines/current/engines"``; the link is followed
when a file is opened, so a start, or ``engines.reload``, takes the release ``current`` points at then.

``engines.reload`` loads the TTS and face engines anew, warms them, and swaps them into the speech maker
(``SpeechMaker.swap_engines``); a clause being spoken finishes on the old ones, which are freed once
nothing uses them. For that moment both sets are in memory. The daemon restarts instead — it answers
``restarting`` and exits with 75, and systemd (``Restart=on-failure``) starts it again on the new
release — when the memory budget (``memory.budget_mb``) does not hold both sets, or when the release
changes a model (the LLM, the recogniser or the voice file, which are loaded only at start). A release
whose own plan does not fit the budget, or whose engines do not load, is refused (``over_budget``,
``engines_reload_failed``) and the old engines stay; the installer then rolls the release back.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from ..errors import ComponentUnavailable, TalkerError
from .errors import OtaExitCode
from .manifest import MODELS_DIR
from .store import CURRENT, MANIFEST_NAME, STATE_FILE

log = logging.getLogger(__name__)

_swap_lock = threading.Lock()
ENGINE_COMPONENTS = ("tts", "face")
RESTART_DELAY_S = 0.5
"""The reply goes out before the daemon stops for its restart."""


@dataclass(frozen=True)
class Release:
    """The release a path resolves into."""

    version: int
    folder: Path
    models: Dict[str, str] = field(default_factory=dict)
    """Path → sha256 of every file under models/ (from the release's signed manifest)."""


def release_of(engines_dir: Path) -> Optional[Release]:
    """The release ``engines_dir`` resolves into now (None when it is not in a release)."""
    for folder in Path(os.path.realpath(engines_dir)).parents:
        manifest = folder / MANIFEST_NAME
        if folder.name.isdigit() and manifest.is_file():
            try:
                files = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
            except (OSError, ValueError) as exc:
                log.warning("release %s: unreadable %s: %s", folder.name, manifest, exc)
                files = []
            models = {f["path"]: f["sha256"] for f in files if str(f.get("path", "")).startswith(MODELS_DIR + "/")}
            return Release(int(folder.name), folder, models)
    return None


def _version(release: Optional[Release]) -> Optional[int]:
    return release.version if release is not None else None


def store_root(engines_dir: Path) -> Optional[Path]:
    """The store whose ``current`` link ``engines_dir`` goes through."""
    path = Path(engines_dir)
    for folder in (path, *path.parents):
        if folder.name == CURRENT and folder.is_symlink():
            return folder.parent
    return None


def engines_status(daemon) -> dict:
    """``talkerctl engines``: the release the daemon runs, the one ``current`` names, any trial."""
    engines_dir = daemon.config.engines.dir
    loaded = _version(getattr(daemon, "engine_release", None))
    linked = _version(release_of(engines_dir))
    root = store_root(engines_dir)
    trial = None
    if root is not None:
        try:
            trial = json.loads((root / STATE_FILE).read_text()).get("trial")
        except (OSError, ValueError) as exc:
            log.debug("no OTA state in %s: %s", root, exc)
    loading = not daemon.ready.is_set()
    states = daemon.parts.states
    return {"active": None if loading else loaded, "loading": loaded if loading else None, "current_link": linked,
            "pending": linked if linked != loaded else None, "trial": trial,
            "store": str(root) if root else None, "engines_dir": str(engines_dir),
            "unavailable": {name: s.detail for name, s in states.items()
                            if name in _component_names() and s.state.value == "unavailable"}}


def _component_names() -> tuple:
    """The models and engines a release can bring (not the devices, which come and go on their own)."""
    from ..registry import COMPONENTS

    return tuple(c.name for c in COMPONENTS)


def restart_reason(daemon, target: Optional[Release]) -> Optional[str]:
    """Why the new release needs a restart rather than a swap (None: swap it in). ``ComponentUnavailable``
    (over_budget) when the new release does not fit the budget at all."""
    from ..memory import plan_memory

    loaded = getattr(daemon, "engine_release", None)
    if target is not None and loaded is not None and target.models != loaded.models:
        return "it changes a model, which loads only at start"
    plan = plan_memory(daemon.config)  # the manifests are read through the current link: the new release
    if not plan.fits:
        raise ComponentUnavailable(f"the new release does not fit memory.budget_mb = {plan.budget_mb} "
                                   f"({plan.total_mb:.0f} MB planned)", code="over_budget")
    engines_now = sum(c.planned_mb for c in daemon.plan.components if c.name in ENGINE_COMPONENTS)
    if plan.total_mb + engines_now > plan.budget_mb:
        return (f"both engine sets for a moment ({plan.total_mb:.0f} + {engines_now:.0f} MB) do not fit "
                f"memory.budget_mb = {plan.budget_mb}")
    return None


def restart_for(daemon, target: Optional[Release], why: str) -> dict:
    """Stop with exit code 75 (systemd starts the daemon again, on the new release)."""
    log.warning("engines: restarting to load release %s: %s", _version(target), why)
    daemon.exit_code = OtaExitCode.TEMPORARY
    threading.Timer(RESTART_DELAY_S, daemon.stop_event.set).start()
    return {"release": _version(target), "previous": _version(getattr(daemon, "engine_release", None)),
            "restarting": True, "why": why}


def reload_engines(daemon) -> dict:
    """Load the TTS and face engines of the release ``current`` names and swap them in (or restart)."""
    from ..registry import component

    pipeline = daemon.pipeline
    if pipeline is None:
        raise ComponentUnavailable("still loading models; try again in a few seconds", code="not_ready")
    config = daemon.config
    with _swap_lock:
        previous = getattr(daemon, "engine_release", None)
        target = release_of(config.engines.dir)
        why = restart_reason(daemon, target)
        if why is not None:
            return restart_for(daemon, target, why)
        try:
            tts = component("tts").load(config)
            face = component("face").load(config) if component("face").enabled(config) else None
        except TalkerError as exc:
            raise ComponentUnavailable(f"release {_version(target)}: the engines do not load: {exc.message}; "
                                       f"still speaking with release {_version(previous)}",
                                       code="engines_reload_failed") from None
        pipeline.speech.swap_engines(tts, face)
        daemon.parts.tts, daemon.parts.face = tts, face
        daemon.parts.set_state("tts", "ok", f"release {_version(target)}")
        daemon.engine_release = target
    log.info("engines: release %s loaded (was %s)", _version(target), _version(previous))
    return {"release": _version(target), "previous": _version(previous)}


def catch_up(daemon) -> None:
    """Once loaded: if ``current`` moved while the daemon was loading (an install's rollback that could
    not reach it), load what it names now."""
    linked = release_of(daemon.config.engines.dir)
    if _version(linked) != _version(getattr(daemon, "engine_release", None)):
        log.warning("engines: current moved to release %s while loading release %s; loading it",
                    _version(linked), _version(daemon.engine_release))
        try:
            reload_engines(daemon)
        except TalkerError as exc:
            log.error("engines: %s", exc.message)
