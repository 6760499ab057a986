"""talkerd-ota on real files with real signatures: a good bundle installs and its trial runs the real
engine; every kind of bad bundle is refused with its code, and the store is byte-for-byte unchanged."""
from __future__ import annotations

import datetime
import json

import numpy as np
import pytest

from talkerd.ota import cli
from talkerd.ota.errors import BundleRejected, NoSpace, OtaError, PolicyRefused, TrialFailed
from talkerd.ota.keys import sign
from talkerd.ota.manifest import Compatibility
from talkerd.ota.publish import EngineSource
from talkerd.ota.store import Store

from . import trt_standin
from .ota_disk import FullDisk
from .ota_helpers import (FACE_ENGINE, ORIN, affine_engine, bundle, edited, installer, key, listing, ota_config,
                          with_signatures, write_trust)


@pytest.fixture
def kiosk(tmp_path):
    """A store whose factory release (version 1) holds the real face engine, and the publisher's key."""
    signer, public = key(tmp_path / "keys", "publisher")
    trust = write_trust(tmp_path / "trust.json", [public])
    cfg = ota_config(tmp_path, trust)
    factory = bundle(tmp_path / "v1.bundle", 1, [signer], [FACE_ENGINE])
    assert installer(cfg).install(factory).version == 1
    return cfg, signer, tmp_path


def test_a_good_bundle_installs_and_its_trial_runs_the_real_engine(kiosk):
    cfg, signer, tmp = kiosk
    affine = affine_engine(tmp)
    voice = tmp / "voice.onnx.json"
    voice.write_text('{"audio": {"sample_rate": 22050}}')
    path = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE, affine], models={"voice": voice}, notes="new voice")
    result = installer(cfg).install(path)
    assert (result.version, result.previous) == (2, 1)
    store = Store(cfg.root, cfg.releases_dir, None)
    state = store.read_state()
    assert (state.committed, state.factory, state.highest_version, state.trial) == (2, 1, 2, None)
    assert (cfg.root / "current").resolve() == cfg.releases_dir.resolve() / "2"
    assert (cfg.root / "current" / "models" / "voice.onnx.json").read_text() == voice.read_text()
    assert (cfg.root / "current" / "engines" / "face-mouth" / "model.onnx").read_bytes() == (FACE_ENGINE / "model.onnx").read_bytes()
    assert store.problems(2) == [] and store.versions() == [1, 2]


def test_info_prints_the_contents_and_changes_nothing(kiosk, capsys):
    cfg, signer, tmp = kiosk
    config = tmp / "ota.toml"
    config.write_text(f'root = "{cfg.root}"\ntrust = "{cfg.trust}"\nreserve_mb = 0\n'
                      '[platform]\ntensorrt = "none"\ncompute_capability = "none"\njetpack = "none"\n')
    before = listing(cfg.root)
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    assert cli.main(["--config", str(config), "info", str(good)]) == 0
    out = capsys.readouterr().out
    assert "bundle version 2" in out and "engines/face-mouth/model.onnx" in out and "would install here" in out
    old = bundle(tmp / "v1b.bundle", 1, [signer], [FACE_ENGINE])
    assert cli.main(["--config", str(config), "info", str(old)]) == 1
    assert "would NOT install here: not_newer" in capsys.readouterr().out
    assert listing(cfg.root) == before


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def _payload_offset(data: bytes, path: str) -> int:
    return data.rindex(path.encode()) + len(path) + 8 + 100  # 100 bytes into that file's content


REJECTIONS = {
    # name: (how to make it, error code, words in the message)
    "bit flip in the magic": (lambda b, t, s, w: _write(t, _flip(b.read_bytes(), 2)), "bad_format", "not a talkerd OTA bundle"),
    "bit flip in a signature": (lambda b, t, s, w: _write(t, _flip(b.read_bytes(), 9 + 32 + 10)), "bad_signature", "signature not valid"),
    "bit flip in the manifest": (lambda b, t, s, w: _write(t, _flip(b.read_bytes(), 9 + 96 + 4 + 30)), "bad_signature", "signature not valid"),
    "bit flip in the payload": (lambda b, t, s, w: _write(t, _flip(b.read_bytes(), _payload_offset(b.read_bytes(), "engines/face-mouth/model.onnx"))),
                                "hash_mismatch", "engines/face-mouth/model.onnx: sha256"),
    "truncated": (lambda b, t, s, w: _write(t, b.read_bytes()[: b.stat().st_size * 6 // 10]), "truncated", "truncated"),
    "wrong key": (lambda b, t, s, w: with_signatures(b, t, sign([w], _manifest(b))), "bad_signature", "0 valid signature(s)"),
    "no signature": (lambda b, t, s, w: with_signatures(b, t, []), "unsigned", "not signed"),
    "expired": (lambda b, t, s, w: bundle(t, 2, [s], [FACE_ENGINE], expires_in_days=-1), "expired", "expired at"),
    "older version": (lambda b, t, s, w: bundle(t, 1, [s], [FACE_ENGINE]), "not_newer", "not newer than version 1"),
    "incompatible TensorRT": (lambda b, t, s, w: bundle(t, 2, [s], [FACE_ENGINE], compatibility=Compatibility(tensorrt_min="10.4")),
                              "incompatible", "this device has TensorRT 10.3.0"),
    "incompatible compute capability": (lambda b, t, s, w: bundle(t, 2, [s], [FACE_ENGINE], compatibility=Compatibility(compute_capabilities=("7.2",))),
                                        "incompatible", "needs compute capability 7.2; this device has 8.7"),
    "incompatible JetPack": (lambda b, t, s, w: bundle(t, 2, [s], [FACE_ENGINE], compatibility=Compatibility(jetpack=("5.1",))),
                             "incompatible", "needs JetPack 5.1"),
    "missing file": (lambda b, t, s, w: edited(b, t, lambda h, e: (h, [x for x in e if not x[0].endswith("model.onnx")])),
                     "missing_file", "engines/face-mouth/model.onnx"),
    "extra file": (lambda b, t, s, w: edited(b, t, lambda h, e: (h, e + [("engines/face-mouth/evil.so", b"\x7fELF", 4)])),
                   "extra_file", "engines/face-mouth/evil.so"),
    "bit flip in a file name": (lambda b, t, s, w: edited(b, t, lambda h, e: (h, [(p.replace("model.onnx", "model.onnz"), d, n) for p, d, n in e])),
                                "extra_file", "model.onnz"),
    "lying size": (lambda b, t, s, w: edited(b, t, lambda h, e: (h, [(p, d + b"!" if p.endswith("manifest.toml") else d, n + 1 if p.endswith("manifest.toml") else n) for p, d, n in e])),
                   "size_mismatch", "payload says"),
    "bytes after the end": (lambda b, t, s, w: _write(t, b.read_bytes() + b"more"), "extra_file", "after the payload's end marker"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _manifest(path):
    import io

    from talkerd.ota.bundle import read_signed_parts

    return read_signed_parts(io.BytesIO(path.read_bytes()))[1]


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_each_bad_bundle_is_refused_with_its_code_and_nothing_changes(kiosk, case):
    cfg, signer, tmp = kiosk
    make, code, words = REJECTIONS[case]
    stranger, _ = key(tmp / "keys", "stranger")
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    bad = make(good, tmp / "bad.bundle", signer, stranger)
    before = listing(cfg.root)
    with pytest.raises(OtaError) as caught:
        installer(cfg, platform=ORIN).install(bad)
    assert caught.value.code == code, caught.value.message
    assert words in caught.value.message
    assert listing(cfg.root) == before
    expected_exit = 65 if isinstance(caught.value, BundleRejected) else 1
    assert caught.value.exit_code == expected_exit and isinstance(caught.value, (BundleRejected, PolicyRefused))


def test_a_full_disk_while_staging_is_refused_and_the_staged_files_removed(kiosk):
    cfg, signer, tmp = kiosk
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    before = listing(cfg.root)
    with pytest.raises(NoSpace, match="the disk filled up while staging release 2") as caught:
        installer(cfg, layer=FullDisk(space=100_000)).install(good)
    assert caught.value.exit_code == 73
    assert listing(cfg.root) == before


def test_too_little_free_space_is_refused_before_staging(kiosk):
    cfg, signer, tmp = kiosk
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    before = listing(cfg.root)
    with pytest.raises(NoSpace, match=r"needs 0\.8 MiB beside the running one.*0\.1 MiB free"):
        installer(cfg, layer=FullDisk(space=1 << 40, free_reported=100_000)).install(good)
    assert listing(cfg.root) == before


def test_a_release_whose_check_fails_after_the_switch_is_rolled_back(kiosk):
    cfg, signer, tmp = kiosk
    affine = affine_engine(tmp)
    x = np.arange(8, dtype=np.float32).reshape(1, 8)
    wrong = {"y": x * 2 + 2, "pos": np.array(np.nonzero(x > 0), dtype=np.int64)}  # off by one
    path = bundle(tmp / "v2.bundle", 2, [signer], [EngineSource(affine, feeds={"x": x}, expected=wrong)])
    before = listing(cfg.root)
    with pytest.raises(TrialFailed, match=r"release 2 failed its trial and was rolled back to 1: engine affine: output y differs"):
        installer(cfg).install(path)
    after = listing(cfg.root)
    assert after == before
    # The same engine with the right expectation passes.
    right = {"y": x * 2 + 1, "pos": wrong["pos"]}
    good = bundle(tmp / "v3.bundle", 3, [signer], [EngineSource(affine, feeds={"x": x}, expected=right)])
    assert installer(cfg).install(good).version == 3


def test_signed_downgrade_rollback_command_and_pruning(kiosk):
    cfg, signer, tmp = kiosk
    affine = affine_engine(tmp)
    for version in (2, 3, 4):
        installer(cfg).install(bundle(tmp / f"v{version}.bundle", version, [signer], [affine]))
    store = Store(cfg.root, cfg.releases_dir, None)
    assert store.versions() == [1, 3, 4]  # keep = 2 besides the factory release 1: 2 was pruned
    assert installer(cfg).rollback() == 3 and store.current_version() == 3
    with pytest.raises(PolicyRefused, match="not newer than version 4"):
        installer(cfg).install(bundle(tmp / "v2b.bundle", 2, [signer], [affine]))
    downgrade = bundle(tmp / "v2c.bundle", 2, [signer], [FACE_ENGINE], downgrade_from=3)
    assert installer(cfg).install(downgrade).version == 2
    assert store.current_version() == 2 and 1 in store.versions()  # the factory release is never pruned


def test_key_rotation_needs_both_roots_and_then_the_old_key_is_refused(kiosk):
    from talkerd.ota.keys import TrustRoot

    cfg, signer, tmp = kiosk
    new_signer, new_public = key(tmp / "keys", "next")
    new_root = TrustRoot(version=2, threshold=1, keys=(new_public,))
    with pytest.raises(BundleRejected, match="its new trust root"):
        installer(cfg).install(bundle(tmp / "r1.bundle", 2, [signer], [FACE_ENGINE], trust=new_root))
    assert installer(cfg).install(bundle(tmp / "r2.bundle", 2, [signer, new_signer], [FACE_ENGINE], trust=new_root)).version == 2
    with pytest.raises(BundleRejected, match="trust root version 2"):
        installer(cfg).install(bundle(tmp / "old.bundle", 3, [signer], [FACE_ENGINE]))
    assert installer(cfg).install(bundle(tmp / "new.bundle", 3, [new_signer], [FACE_ENGINE])).version == 3


def test_a_threshold_of_two_keys(tmp_path):
    (a, pa), (b, pb), (c, _) = (key(tmp_path / "k", n) for n in "abc")
    cfg = ota_config(tmp_path, write_trust(tmp_path / "trust.json", [pa, pb], threshold=2))
    with pytest.raises(BundleRejected, match="1 valid signature"):
        installer(cfg).install(bundle(tmp_path / "one.bundle", 1, [a, c], [FACE_ENGINE]))
    assert installer(cfg).install(bundle(tmp_path / "two.bundle", 1, [a, b], [FACE_ENGINE])).version == 1


def test_one_installer_at_a_time(kiosk):
    from talkerd.ota.errors import Locked

    cfg, signer, tmp = kiosk
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    first = installer(cfg)
    with first.store.locked():
        with pytest.raises(Locked, match="another talkerd-ota holds") as caught:
            installer(cfg).install(good)
    assert caught.value.exit_code == 75


def test_tensorrt_engines_are_built_on_the_device_when_the_bundle_has_only_onnx(kiosk, monkeypatch):
    """TensorRT is the stand-in (tests/trt_standin.py): the builder and its sidecar are the real code."""
    cfg, signer, tmp = kiosk
    trt_standin.install(monkeypatch, version="10.3.0", capability=(8, 7))
    cfg = cfg.model_copy(update={"trial_backend": "auto"})
    affine = affine_engine(tmp)
    compat = Compatibility(tensorrt_min="10.3", tensorrt_below="10.4", compute_capabilities=("8.7",))
    result = installer(cfg, platform=ORIN).install(bundle(tmp / "v2.bundle", 2, [signer], [affine], compatibility=compat))
    assert len(result.built) == 1 and "affine: built" in result.built[0]
    folder = cfg.releases_dir / "2" / "engines" / "affine"
    sidecar = json.loads((folder / "affine-trt10.3.0-sm87-fp16.engine.json").read_text())
    assert sidecar["tensorrt_version"] == "10.3.0"
    assert Store(cfg.root, cfg.releases_dir, None).problems(2) == []


def test_cli_exit_codes_and_messages(kiosk, capsys):
    cfg, signer, tmp = kiosk
    config = tmp / "ota.toml"
    config.write_text(f'root = "{cfg.root}"\ntrust = "{cfg.trust}"\nreserve_mb = 0\ntrial_backend = "onnxruntime"\n'
                      '[platform]\ntensorrt = "none"\ncompute_capability = "none"\njetpack = "none"\n')
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    bad = _write(tmp / "bad.bundle", _flip(good.read_bytes(), 9 + 96 + 4 + 30))
    assert cli.main(["--config", str(config), "install", str(bad)]) == 65
    assert "signature not valid" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "install", str(tmp / "nope.bundle")]) == 2
    assert cli.main(["--config", str(tmp / "missing.toml"), "status"]) == 78
    assert cli.main(["--config", str(config), "install", str(good)]) == 0
    capsys.readouterr()
    assert cli.main(["--config", str(config), "--json", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["current"], status["committed"], status["factory"], status["trial"]) == (2, 2, 1, None)
    assert cli.main(["--config", str(config), "list"]) == 0
    out = capsys.readouterr().out
    assert "current committed" in out and "factory" in out


def test_recover_falls_back_from_a_damaged_active_release(kiosk):
    from talkerd.ota.errors import StoreError

    cfg, signer, tmp = kiosk
    installer(cfg).install(bundle(tmp / "v2.bundle", 2, [signer], [affine_engine(tmp)]))
    onnx = cfg.releases_dir / "2" / "engines" / "affine" / "affine.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\x00")  # a bad sector: same size, other content
    actions = installer(cfg).recover(full=True)
    assert any("release 2 is damaged (engines/affine/affine.onnx: sha256 differs); switched to release 1" in a for a in actions)
    store = Store(cfg.root, cfg.releases_dir, None)
    assert store.current_version() == 1 and store.read_state().committed == 1
    face = cfg.releases_dir / "1" / "engines" / "face-mouth" / "model.onnx"
    face.write_bytes(b"")
    onnx.unlink()
    with pytest.raises(StoreError, match="no other intact release is kept; install a newer bundle"):
        installer(cfg).recover(full=True)
    assert installer(cfg).install(bundle(tmp / "v3.bundle", 3, [signer], [FACE_ENGINE])).version == 3


def test_the_daemon_knows_when_a_release_changes_a_model(kiosk):
    from talkerd.ota.daemon_side import release_of

    cfg, signer, tmp = kiosk
    gguf = tmp / "model.gguf"
    versions = {}
    for version, content in ((2, b"one"), (3, b"two"), (4, b"two")):
        gguf.write_bytes(content)
        installer(cfg).install(bundle(tmp / f"v{version}.bundle", version, [signer], [FACE_ENGINE], models={"llm": gguf}))
        versions[version] = release_of(cfg.root / "current" / "engines")
    assert [versions[v].version for v in (2, 3, 4)] == [2, 3, 4]
    assert versions[2].models != versions[3].models and versions[3].models == versions[4].models
    assert list(versions[4].models) == ["models/model.gguf"]


def test_rollback_with_nothing_to_go_back_to_says_so(kiosk):
    from talkerd.ota.errors import NoRelease

    cfg, signer, tmp = kiosk
    with pytest.raises(NoRelease, match="no intact release older than 1 to roll back to") as caught:
        installer(cfg).rollback()
    assert caught.value.exit_code == 1
    with pytest.raises(NoRelease, match=r"no release 7 here \(releases: 1\)"):
        installer(cfg).rollback(7)


def test_a_bit_flip_anywhere_in_the_bundle_is_refused(kiosk):
    """The header, a signature's key and its bytes, the manifest, and 24 positions spread over the file."""
    cfg, signer, tmp = kiosk
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE, affine_engine(tmp)])
    data = good.read_bytes()
    before = listing(cfg.root)
    codes = set()
    head = [3, 8, 9 + 5, 9 + 40, 9 + 96 + 2, 9 + 96 + 4 + 10, 9 + 96 + 4 + 300]
    for offset in head + list(np.linspace(0, len(data) - 1, 24).astype(int)):
        bad = _write(tmp / "flipped.bundle", _flip(data, int(offset)))
        with pytest.raises(BundleRejected) as caught:
            installer(cfg).install(bad)
        codes.add(caught.value.code)
        assert listing(cfg.root) == before, f"a flip at byte {offset} changed the store"
    assert {"bad_format", "bad_signature", "hash_mismatch"} <= codes


def test_an_engine_whose_onnx_the_signed_manifest_leaves_out_is_refused_before_staging(kiosk):
    from .ota_helpers import resigned

    cfg, signer, tmp = kiosk
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    drop_onnx = lambda m: {**m, "files": [f for f in m["files"] if not f["path"].endswith(".onnx")]}  # noqa: E731
    bad = resigned(good, tmp / "bad.bundle", [signer], drop_onnx)
    before = listing(cfg.root)
    with pytest.raises(BundleRejected, match="engine face-mouth: its ONNX model.onnx is not in the bundle") as caught:
        installer(cfg).install(bad)
    assert caught.value.code == "missing_file" and listing(cfg.root) == before


def test_a_trial_that_cannot_even_read_its_warmup_file_is_rolled_back(kiosk):
    from .ota_helpers import resigned

    cfg, signer, tmp = kiosk
    good = bundle(tmp / "v2.bundle", 2, [signer], [FACE_ENGINE])
    bad = resigned(good, tmp / "bad.bundle", [signer], lambda m: m,
                   replace={"engines/face-mouth/ota-warmup.npz": b"not an npz file"})
    before = listing(cfg.root)
    with pytest.raises(TrialFailed, match="rolled back to 1: engine face-mouth: failed to run: ota-warmup.npz is not a numpy .npz"):
        installer(cfg).install(bad)
    assert listing(cfg.root) == before
