"""Crash points: the installer killed (SIGKILL, a real process) before every step that writes, fsyncs
or renames, and separately a power cut at every such step (tests/ota_disk.py: what was not fsynced is
lost). After each, ``recover`` must leave a complete, verified release — the old one or the new one —
whose engines pass the trial check, and a store that takes the update again."""
from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys

import pytest

from talkerd.ota.fileio import FileLayer
from talkerd.ota.store import Store
from talkerd.ota import trial

from .ota_disk import PowerCut, PowerCutDisk, StepRecorder
from .ota_helpers import ROOT, affine_engine, bundle, installer, key, ota_config, write_trust

OLD, NEW = 2, 3


@pytest.fixture
def template(tmp_path):
    """A store with the factory release 1 and release 2 active (the affine engine), and a bundle for
    release 3 (the affine engine and a model file): with ``keep = 1`` its install also prunes release 2."""
    signer, public = key(tmp_path / "keys", "publisher")
    cfg = ota_config(tmp_path, write_trust(tmp_path / "trust.json", [public]), keep=1)
    engine = affine_engine(tmp_path)
    installer(cfg).install(bundle(tmp_path / "v1.bundle", 1, [signer], [engine]))
    installer(cfg).install(bundle(tmp_path / "v2.bundle", 2, [signer], [engine]))
    model = tmp_path / "voice.onnx.json"
    model.write_text("{}")
    new = bundle(tmp_path / "v3.bundle", 3, [signer], [engine], models={"voice": model})
    return cfg, new, tmp_path


def _steps(cfg, new, tmp):
    """Install once on a copy, recording every step."""
    copy = tmp / "count"
    shutil.copytree(cfg.root, copy, symlinks=True)
    recorder = StepRecorder()
    installer(cfg.model_copy(update={"root": copy}), layer=recorder).install(new)
    return recorder.kinds


def _assert_serves_a_verified_release(cfg, new, *, update_again=True):
    """What the next start does (recover), then: a complete release, old or new, that passes the trial."""
    installer(cfg).recover()
    store = Store(cfg.root, cfg.releases_dir, FileLayer())
    state, current = store.read_state(), store.current_version()
    assert current in (OLD, NEW) and state.committed == current and state.trial is None
    assert 1 in store.versions()  # the factory release
    assert store.problems(current, full=True) == []
    assert store.leftovers() == [] and not (cfg.root / ".current.new").exists()
    assert trial.check_release(store.release_dir(current), store.manifest(current), "onnxruntime", 1) == []
    if current == OLD and update_again:  # the interrupted update goes in on the next try
        assert installer(cfg).install(new).version == NEW
    return current


def test_a_power_cut_at_every_step_leaves_a_verified_release(template, capsys):
    cfg, new, tmp = template
    kinds = _steps(cfg, new, tmp)
    outcomes = collections.Counter()
    for step in range(1, len(kinds) + 2):  # before each step, and after the last one
        root = tmp / f"cut-{step}"
        shutil.copytree(cfg.root, root, symlinks=True)
        at = cfg.model_copy(update={"root": root})
        disk = PowerCutDisk(root, cut_at=step)
        try:
            installer(at, layer=disk).install(new)
        except PowerCut:
            pass
        disk.power_cut()
        outcomes[_assert_serves_a_verified_release(at, new)] += 1
    per_kind = collections.Counter(kind for kind, _ in kinds)
    with capsys.disabled():
        print(f"\npower cuts: {len(kinds) + 1} crash points ({dict(per_kind)} + after the last step); "
              f"recovered to the old release: {outcomes[OLD]}, the new one: {outcomes[NEW]}")
    assert outcomes[OLD] and outcomes[NEW]  # both outcomes happen: the cut points span the switch
    assert per_kind["fsync"] and per_kind["fsync_dir"] and per_kind["rename"] and per_kind["write"]


def test_sigkill_at_every_step_leaves_a_verified_release(template, capsys):
    cfg, new, tmp = template
    kinds = _steps(cfg, new, tmp)
    config = tmp / "cfg.json"
    config.write_text(cfg.model_dump_json())
    out = tmp / "killed"
    out.mkdir()
    runner = subprocess.run([sys.executable, "-m", "tests.ota_crash_runner", str(config), str(cfg.root), str(new),
                             str(out), "1", str(len(kinds))], cwd=ROOT, capture_output=True, text=True, check=True)
    reports = [json.loads(line) for line in runner.stdout.splitlines()]
    assert [r["step"] for r in reports] == list(range(1, len(kinds) + 1))
    assert all(r["killed"] for r in reports), runner.stderr
    outcomes = collections.Counter()
    for report in reports:
        at = cfg.model_copy(update={"root": out / str(report["step"])})
        outcomes[_assert_serves_a_verified_release(at, new)] += 1
    per_kind = collections.Counter(kind for kind, _ in kinds)
    with capsys.disabled():
        print(f"\nSIGKILL: {len(reports)} crash points ({dict(per_kind)}); "
              f"recovered to the old release: {outcomes[OLD]}, the new one: {outcomes[NEW]}")
    assert outcomes[OLD] and outcomes[NEW]


def _cut_install(cfg, new, root, step):
    """The store as a power cut before install step ``step`` leaves it."""
    shutil.copytree(cfg.root, root, symlinks=True)
    disk = PowerCutDisk(root, cut_at=step)
    try:
        installer(cfg.model_copy(update={"root": root}), layer=disk).install(new)
    except PowerCut:
        pass
    disk.power_cut()


def test_a_power_cut_during_recovery_is_recovered_at_the_start_after(template, capsys):
    """Two faults: the power fails during an install and again during the recovery at the next start."""
    cfg, new, tmp = template
    kinds = _steps(cfg, new, tmp)
    exercised = 0
    for step in range(1, len(kinds) + 1):
        base = tmp / f"base-{step}"
        _cut_install(cfg, new, base, step)
        probe = tmp / f"probe-{step}"
        shutil.copytree(base, probe, symlinks=True)
        recorder = StepRecorder()
        installer(cfg.model_copy(update={"root": probe}), layer=recorder).recover()
        for cut in range(1, len(recorder.kinds) + 1):
            root = tmp / f"twice-{step}-{cut}"
            shutil.copytree(base, root, symlinks=True)
            at = cfg.model_copy(update={"root": root})
            disk = PowerCutDisk(root, cut_at=cut)
            try:
                installer(at, layer=disk).recover()
            except PowerCut:
                pass
            disk.power_cut()
            _assert_serves_a_verified_release(at, new, update_again=False)
            exercised += 1
    with capsys.disabled():
        print(f"\npower cut during the recovery after a power cut: {exercised} crash points")
    assert exercised > len(kinds)
