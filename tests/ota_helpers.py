"""Building real keys, trust roots, engine folders and signed bundles for the OTA tests, and a full
listing of a store with the sha256 of every file (what "nothing on disk changed" is checked against)."""
from __future__ import annotations

import datetime
import hashlib
import os
import struct
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from talkerd.ota.bundle import MAGIC, read_signed_parts
from talkerd.ota.config import OtaConfig, parse_ota_config
from talkerd.ota.device import Platform
from talkerd.ota.installer import Installer
from talkerd.ota.keys import TrustRoot, generate_key, load_private_key, trust_json
from talkerd.ota.publish import BundleSpec, EngineSource, make_bundle

from .engine_helpers import make_engines

ROOT = Path(__file__).resolve().parent.parent
FACE_ENGINE = ROOT / "engines" / "face-mouth"
NO_GPU = Platform(None, None, None)
ORIN = Platform("10.3.0", "8.7", "6.1")


def key(folder: Path, name: str):
    private, _, hex_key = generate_key(folder, name)
    return load_private_key(private), hex_key


def write_trust(path: Path, keys: List[str], *, threshold: int = 1, version: int = 1) -> Path:
    path.write_bytes(trust_json(TrustRoot(version=version, threshold=threshold, keys=tuple(keys))))
    return path


def ota_config(tmp: Path, trust: Path, **fields) -> OtaConfig:
    data = {"root": str(tmp / "store"), "trust": str(trust), "reserve_mb": 0, "trial_backend": "onnxruntime",
            "cpu_threads": 1, **fields}
    return parse_ota_config(data, source="<test>", base_dir=tmp)


def affine_engine(tmp: Path, name: str = "affine") -> Path:
    """A tiny real ONNX engine folder (y = 2x + 1, made with onnx.helper)."""
    return make_engines(tmp / f"src-{name}", name).dir / name


def bundle(path: Path, version: int, keys, engines: List[Path], *, expires_in_days: float = 30, **spec) -> Path:
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=expires_in_days)
    sources = [e if isinstance(e, EngineSource) else EngineSource(e) for e in engines]
    make_bundle(BundleSpec(version=version, engines=sources, expires=expires, **spec), path, keys)
    return path


def installer(cfg: OtaConfig, **kwargs) -> Installer:
    kwargs.setdefault("platform", NO_GPU)
    return Installer(cfg, **kwargs)


def listing(root: Path) -> dict:
    """Every entry under ``root``: type, and the sha256 of files or the target of links."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir",)
            else:
                entries[relative] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


# -- taking a bundle apart and putting it back together (an attacker's edits) ---------------------------
Entry = Tuple[str, bytes, int]
"""(path, bytes, the size its entry header declares)."""


def split(data: bytes) -> Tuple[bytes, List[Entry]]:
    """The bundle's signed head (magic, signatures, manifest) and its payload entries."""
    import io

    handle = io.BytesIO(data)
    read_signed_parts(handle)
    head_end = handle.tell()
    entries, offset = [], head_end
    while data[offset:offset + 1] == b"F":
        (length,) = struct.unpack(">H", data[offset + 1:offset + 3])
        path = data[offset + 3:offset + 3 + length].decode()
        (size,) = struct.unpack(">Q", data[offset + 3 + length:offset + 11 + length])
        body = data[offset + 11 + length:offset + 11 + length + size]
        entries.append((path, body, size))
        offset += 11 + length + size
    return data[:head_end], entries


def join(head: bytes, entries: List[Entry]) -> bytes:
    out = bytearray(head)
    for path, body, size in entries:
        name = path.encode()
        out += b"F" + struct.pack(">H", len(name)) + name + struct.pack(">Q", size) + body
    return bytes(out + b"E")


def edited(source: Path, target: Path, edit: Callable[[bytes, List[Entry]], Tuple[bytes, List[Entry]]]) -> Path:
    head, entries = split(source.read_bytes())
    target.write_bytes(join(*edit(head, entries)))
    return target


def with_signatures(source: Path, target: Path, signatures: List[Tuple[bytes, bytes]]) -> Path:
    """The same manifest and payload with other signatures."""
    data = source.read_bytes()
    import io

    handle = io.BytesIO(data)
    _, raw = read_signed_parts(handle)
    rest = data[handle.tell():]
    head = MAGIC + struct.pack(">B", len(signatures)) + b"".join(k + s for k, s in signatures)
    target.write_bytes(head + struct.pack(">I", len(raw)) + raw + rest)
    return target


def resigned(source: Path, target: Path, keys, edit: Callable[[dict], dict], replace: Optional[Dict[str, bytes]] = None) -> Path:
    """A bundle whose manifest is edited and signed again (a publisher's mistake, not an attack): files in
    ``replace`` get new content (and the manifest their size and sha256); the payload keeps only the
    files the edited manifest lists."""
    import io
    import json

    from talkerd.ota.keys import sign
    from talkerd.ota.manifest import manifest_bytes, parse_manifest

    replace = replace or {}
    head, entries = split(source.read_bytes())
    entries = [(p, replace[p], len(replace[p])) if p in replace else (p, d, n) for p, d, n in entries]
    _, raw = read_signed_parts(io.BytesIO(source.read_bytes()))
    data = edit(json.loads(raw))
    data["files"] = [{**f, "size": len(replace[f["path"]]), "sha256": hashlib.sha256(replace[f["path"]]).hexdigest()}
                     if f["path"] in replace else f for f in data["files"]]
    manifest = parse_manifest(json.dumps(data).encode())
    raw = manifest_bytes(manifest)
    signatures = sign(keys, raw)
    listed = {f.path for f in manifest.files}
    head = MAGIC + struct.pack(">B", len(signatures)) + b"".join(k + s for k, s in signatures) + struct.pack(">I", len(raw)) + raw
    target.write_bytes(join(head, [e for e in entries if e[0] in listed]))
    return target
