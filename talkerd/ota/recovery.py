"""Recovery at start: the store brought back to a committed, intact release after a crash or a power cut.

Run before the daemon starts (``talkerd-ota recover``, ``ExecStartPre=`` of talkerd.service) and at the
beginning of every install and rollback, under the store's lock.
"""
from __future__ import annotations

import logging
from typing import List

from .store import CURRENT, StoreState, Store

log = logging.getLogger(__name__)


def recover_store(store: Store, *, full: bool = False) -> List[str]:
    """Undo what an interrupted install left; returns what was done (empty: nothing was needed).
    ``full`` hashes every file of the active release (it is done anyway after any repair)."""
    actions = _remove_leftovers(store)
    state = store.read_state()
    if state.trial is not None:
        trial = state.trial
        store.switch(trial.previous)
        state = state.model_copy(update={"trial": None})
        store.write_state(state)
        if trial.version in store.versions() and trial.version not in (state.committed, state.factory):
            store.remove_release(trial.version)
        actions.append(f"rolled back the interrupted trial of release {trial.version} to "
                       f"{trial.previous if trial.previous is not None else 'no release'}")
    for version in store.versions():
        if version > state.highest_version and version != state.committed:
            store.remove_release(version)
            actions.append(f"removed release {version}, which was never committed")
    if store.current_version() != state.committed and (state.committed is None or state.committed in store.versions()):
        store.switch(state.committed)
        actions.append(f"switched current back to the committed release {state.committed}")
    current = store.current_version()
    if current is not None:
        problems = store.problems(current, full=full or bool(actions))
        if problems:
            actions.append(_fall_back(store, state, current, problems))
    for line in actions:
        log.warning("recover: %s", line)
    return actions


def _remove_leftovers(store: Store) -> List[str]:
    store.ensure_dirs()
    actions = []
    for leftover in store.leftovers():
        store.layer.remove_tree(leftover)
        actions.append(f"removed the unfinished {leftover.name}")
    stray_link = store.root / f".{CURRENT}.new"
    if stray_link.is_symlink() or stray_link.exists():
        store.layer.unlink(stray_link)
        store.layer.fsync_dir(store.root)
    return actions


def _fall_back(store: Store, state: StoreState, broken: int, problems: List[str]) -> str:
    """Switch to the newest intact kept release; a damaged one with nothing to fall back to stays
    active (an install can still repair it)."""
    for version in [v for v in reversed(store.versions()) if v != broken]:
        if not store.problems(version):
            store.switch(version)
            store.write_state(state.model_copy(update={"committed": version}))
            return f"release {broken} is damaged ({'; '.join(problems[:3])}); switched to release {version}"
    return (f"release {broken} is damaged ({'; '.join(problems[:3])}) and no other intact release is kept; "
            "install a newer bundle to repair it")
