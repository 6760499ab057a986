"""The bundle file: one signed manifest and the release's files, read with every length capped.

Layout (integers big-endian)::

    magic        8 bytes   b"TKOTA\\x01\\r\\n"
    signatures   u8 count (0..16), then count × (32-byte ed25519 public key, 64-byte signature)
    manifest     u32 length (at most 4 MiB), then the manifest's JSON bytes (what is signed)
    payload      per file: b"F", u16 path length, path (UTF-8), u64 size, the bytes; then b"E"

The signatures are checked against the trust root before the manifest is parsed at all, and nothing
in the payload is believed unless the signed manifest lists it with that size and sha256: an entry the
manifest does not list, a size other than the manifest's, a listed file that never comes, a byte
after the end marker — each is a rejection. No read is ever longer than a size the signed manifest
gave (or the fixed caps before it), so a bundle cannot make the reader consume endless data.
"""
from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple

from .errors import BundleRejected
from .keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, TrustRoot, check_signatures
from .manifest import BundleManifest, FileEntry, manifest_bytes, parse_manifest

MAGIC = b"TKOTA\x01\r\n"
MAX_SIGNATURES = 16
MAX_MANIFEST_BYTES = 4 << 20
MAX_PATH_BYTES = 1024
CHUNK = 1 << 20
_FILE, _END = b"F", b"E"


@dataclass(frozen=True)
class Header:
    """The parts before the payload, signature checked."""

    signatures: Tuple[Tuple[bytes, bytes], ...]
    manifest_bytes: bytes
    manifest: BundleManifest
    payload_offset: int


def _read_exact(handle: BinaryIO, size: int, what: str) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise BundleRejected(f"bundle is truncated: it ends inside {what}", code="truncated")
    return data


def read_signed_parts(handle: BinaryIO) -> Tuple[List[Tuple[bytes, bytes]], bytes]:
    """Magic, signatures and the manifest's raw bytes: nothing is interpreted yet."""
    magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise BundleRejected("not a talkerd OTA bundle (wrong magic bytes)", code="bad_format")
    (count,) = struct.unpack(">B", _read_exact(handle, 1, "the signature count"))
    if count > MAX_SIGNATURES:
        raise BundleRejected(f"bundle claims {count} signatures (at most {MAX_SIGNATURES})", code="bad_format")
    signatures = []
    for index in range(count):
        block = _read_exact(handle, PUBLIC_KEY_BYTES + SIGNATURE_BYTES, f"signature {index + 1}")
        signatures.append((block[:PUBLIC_KEY_BYTES], block[PUBLIC_KEY_BYTES:]))
    (length,) = struct.unpack(">I", _read_exact(handle, 4, "the manifest length"))
    if length > MAX_MANIFEST_BYTES:
        raise BundleRejected(f"manifest length {length} is over the {MAX_MANIFEST_BYTES}-byte cap", code="too_large")
    return signatures, _read_exact(handle, length, "the manifest")


def read_header(handle: BinaryIO, trust: TrustRoot, *, what: str = "bundle") -> Header:
    """The signature-checked, parsed header; ``BundleRejected`` for a bad, unsigned or forged one."""
    signatures, raw = read_signed_parts(handle)
    check_signatures(trust, signatures, raw, what=what)
    return Header(tuple(signatures), raw, parse_manifest(raw), handle.tell())


def iter_payload(handle: BinaryIO, manifest: BundleManifest) -> Iterator[Tuple[FileEntry, Iterator[bytes]]]:
    """Each file as (its manifest entry, its bytes in chunks). The caller consumes the chunks before
    taking the next file; the hash is checked once they are consumed."""
    listed: Dict[str, FileEntry] = {f.path: f for f in manifest.files}
    seen = set()
    while True:
        tag = _read_exact(handle, 1, "the payload (no end marker)")
        if tag == _END:
            break
        if tag != _FILE:
            raise BundleRejected(f"payload: unexpected byte {tag!r} at offset {handle.tell() - 1}", code="bad_format")
        (path_len,) = struct.unpack(">H", _read_exact(handle, 2, "a file name length"))
        if path_len > MAX_PATH_BYTES:
            raise BundleRejected(f"payload: file name of {path_len} bytes (at most {MAX_PATH_BYTES})", code="bad_format")
        path = _read_exact(handle, path_len, "a file name").decode("utf-8", errors="replace")
        (size,) = struct.unpack(">Q", _read_exact(handle, 8, f"the size of {path}"))
        entry = listed.get(path)
        if entry is None:
            raise BundleRejected(f"payload holds {path!r}, which the signed manifest does not list", code="extra_file")
        if path in seen:
            raise BundleRejected(f"payload holds {path} twice", code="extra_file")
        if size != entry.size:
            raise BundleRejected(f"{path}: payload says {size} bytes, the signed manifest {entry.size}",
                                 code="size_mismatch")
        seen.add(path)
        digest = hashlib.sha256()
        yield entry, _chunks(handle, entry, digest)
        if digest.hexdigest() != entry.sha256:
            raise BundleRejected(f"{path}: sha256 {digest.hexdigest()} differs from the signed {entry.sha256}",
                                 code="hash_mismatch")
    missing = [p for p in listed if p not in seen]
    if missing:
        raise BundleRejected(f"{len(missing)} file(s) of the manifest are not in the payload: {', '.join(missing[:5])}",
                             code="missing_file")
    if handle.read(1):
        raise BundleRejected("bytes after the payload's end marker", code="extra_file")


def _chunks(handle: BinaryIO, entry: FileEntry, digest) -> Iterator[bytes]:
    left = entry.size
    while left:
        block = handle.read(min(CHUNK, left))
        if not block:
            raise BundleRejected(f"bundle is truncated: it ends inside {entry.path}", code="truncated")
        digest.update(block)
        left -= len(block)
        yield block


def verify(path: Path, trust: TrustRoot, keep: Callable[[str], bool] = lambda p: False) -> Tuple[Header, Dict[str, bytes]]:
    """Check a whole bundle without writing anything: the header, then every file's size and hash.
    Returns the header and the content of the files ``keep(path)`` asks for (small ones)."""
    kept: Dict[str, bytes] = {}
    with Path(path).open("rb") as handle:
        header = read_header(handle, trust)
        for entry, chunks in iter_payload(handle, header.manifest):
            data = b"".join(chunks) if keep(entry.path) else _drain(chunks)
            if data:
                kept[entry.path] = data
    return header, kept


def _drain(chunks: Iterable[bytes]) -> bytes:
    for _ in chunks:
        pass
    return b""


# -- writing (publisher side) -----------------------------------------------------------------------
def file_entry(relative: str, source: Path) -> FileEntry:
    digest = hashlib.sha256()
    size = 0
    with Path(source).open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
            size += len(block)
    return FileEntry(path=relative, size=size, sha256=digest.hexdigest())


def write_bundle(out: Path, manifest: BundleManifest, sources: Dict[str, Path],
                 signatures: Sequence[Tuple[bytes, bytes]], raw_manifest: Optional[bytes] = None) -> int:
    """Write the bundle file atomically (temporary file, then rename); returns its size."""
    raw = raw_manifest if raw_manifest is not None else manifest_bytes(manifest)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(MAGIC + struct.pack(">B", len(signatures)))
        for public, signature in signatures:
            handle.write(public + signature)
        handle.write(struct.pack(">I", len(raw)) + raw)
        for entry in manifest.files:
            name = entry.path.encode()
            handle.write(_FILE + struct.pack(">H", len(name)) + name + struct.pack(">Q", entry.size))
            with Path(sources[entry.path]).open("rb") as source:
                for block in iter(lambda: source.read(CHUNK), b""):
                    handle.write(block)
        handle.write(_END)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)
    return out.stat().st_size
