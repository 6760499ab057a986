"""The publisher's commands end to end: keygen, trust, make-bundle, then info and install on a kiosk store."""
from __future__ import annotations

import json

from talkerd.ota import cli

from .ota_helpers import FACE_ENGINE


def test_keygen_trust_make_bundle_info_install(tmp_path, capsys):
    keys = tmp_path / "keys"
    assert cli.main(["keygen", "--out", str(keys), "--name", "fleet-a"]) == 0
    assert cli.main(["keygen", "--out", str(keys), "--name", "fleet-b"]) == 0
    assert (keys / "fleet-a.key").stat().st_mode & 0o777 == 0o600
    assert cli.main(["keygen", "--out", str(keys), "--name", "fleet-a"]) == 78  # never overwrites a key
    assert "exists; not overwriting a key" in capsys.readouterr().err
    trust = tmp_path / "trust.json"
    assert cli.main(["trust", "--out", str(trust), "--threshold", "2", str(keys / "fleet-a.pub"), str(keys / "fleet-b.pub")]) == 0
    assert json.loads(trust.read_text())["threshold"] == 2
    assert cli.main(["trust", "--out", str(tmp_path / "bad.json"), "--threshold", "3", str(keys / "fleet-a.pub")]) == 78
    assert "threshold 3 is more than the 1 keys listed" in capsys.readouterr().err

    voice = tmp_path / "voice"
    (voice / "conf").mkdir(parents=True)
    (voice / "conf" / "model.conf").write_text("--sample-frequency=16000\n")
    (voice / "final.mdl").write_bytes(b"\x00" * 100)
    bundle = tmp_path / "engines-1.bundle"
    make = ["make-bundle", "--out", str(bundle), "--version", "1", "--key", str(keys / "fleet-a.key"),
            "--key", str(keys / "fleet-b.key"), "--engine", str(FACE_ENGINE), "--model", f"asr={voice}",
            "--compute-capability", "8.7", "--jetpack", "6.1", "--notes", "first"]
    assert cli.main(make) == 0
    capsys.readouterr()

    config = tmp_path / "ota.toml"
    config.write_text('root = "store"\ntrust = "trust.json"\nreserve_mb = 0\ntrial_backend = "onnxruntime"\n'
                      '[platform]\ntensorrt = "none"\ncompute_capability = "8.7"\njetpack = "6.1"\n')
    assert cli.main(["--config", str(config), "--json", "info", str(bundle)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["would_install"] and info["signatures"] == 2 and info["models"] == {"asr": "models/voice"}
    assert {f["path"] for f in info["files"]} >= {"models/voice/final.mdl", "models/voice/conf/model.conf",
                                                  "engines/face-mouth/model.onnx", "engines/face-mouth/ota-warmup.npz"}
    assert cli.main(["--config", str(config), "install", str(bundle)]) == 0
    assert (tmp_path / "store" / "current" / "models" / "voice" / "conf" / "model.conf").is_file()
    assert cli.main(["make-bundle", "--out", str(tmp_path / "x.bundle"), "--version", "2", "--key", str(keys / "fleet-a.key"),
                     "--model", "asr"]) == 2
    assert "--model 'asr': expected ROLE=PATH" in capsys.readouterr().err



def test_a_store_that_is_not_a_folder_is_a_clear_message_not_a_traceback(tmp_path, capsys):
    from .ota_helpers import bundle, key, write_trust

    signer, public = key(tmp_path / "keys", "publisher")
    write_trust(tmp_path / "trust.json", [public])
    (tmp_path / "store").write_text("not a folder")
    config = tmp_path / "ota.toml"
    config.write_text('root = "store"\ntrust = "trust.json"\n')
    good = bundle(tmp_path / "v1.bundle", 1, [signer], [FACE_ENGINE])
    assert cli.main(["--config", str(config), "install", str(good)]) == 74
    err = capsys.readouterr().err
    assert f"{tmp_path / 'store'}: File exists" in err and "Traceback" not in err
