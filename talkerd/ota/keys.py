"""ed25519 keys (``cryptography``) and the trust root: which public keys may sign, and how many must.

A signature is over ``SIGNING_CONTEXT + manifest bytes``: the context keeps a bundle signature from
being valid as any other kind of message signed with the same key. The trust root is pinned on the
kiosk (``/etc/talkerd/ota-trust.json``); a bundle may carry the next root (key rotation), which is
adopted only when the bundle is signed by a threshold of the old root *and* of the new one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import BundleRejected, OtaConfigError

SIGNING_CONTEXT = b"talkerd-ota bundle v1\x00"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class TrustRoot(BaseModel):
    """The public keys allowed to sign bundles and how many of them must sign each one."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    version: int = Field(ge=1)
    """Goes up with every rotation; a root is only ever replaced by a higher version."""
    threshold: int = Field(ge=1)
    """Distinct valid signatures by these keys that a bundle needs."""
    keys: Tuple[str, ...] = Field(min_length=1)
    """ed25519 public keys, 64 hexadecimal digits each."""

    @field_validator("keys")
    @classmethod
    def _hex_keys(cls, keys: Tuple[str, ...]) -> Tuple[str, ...]:
        for key in keys:
            try:
                if len(bytes.fromhex(key)) != PUBLIC_KEY_BYTES:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{key!r} is not an ed25519 public key (64 hexadecimal digits)") from None
        if len(set(keys)) != len(keys):
            raise ValueError("a key is listed twice")
        return tuple(k.lower() for k in keys)

    @model_validator(mode="after")
    def _reachable(self) -> "TrustRoot":
        if self.threshold > len(self.keys):
            raise ValueError(f"threshold {self.threshold} is more than the {len(self.keys)} keys listed")
        return self


def load_trust(path: Path) -> TrustRoot:
    """The trust root in ``path``; ``OtaConfigError`` naming the file and what is wrong."""
    try:
        return TrustRoot.model_validate_json(Path(path).read_bytes())
    except FileNotFoundError:
        raise OtaConfigError(f"{path}: no such trust root (the pinned public keys)") from None
    except OSError as exc:
        raise OtaConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise OtaConfigError(f"{path}: {where}: {error['msg']}", code="keys_invalid") from None


def trust_json(root: TrustRoot) -> bytes:
    return (json.dumps(root.model_dump(mode="json"), indent=2) + "\n").encode()


# -- private keys (publisher side) ------------------------------------------------------------------
def generate_key(directory: Path, name: str) -> Tuple[Path, Path, str]:
    """Write ``NAME.key`` (PKCS#8 PEM, mode 0600) and ``NAME.pub`` (hex); refuses to overwrite."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private, public):
        if path.exists():
            raise OtaConfigError(f"{path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    hex_key = public_hex(key)
    public.write_text(hex_key + "\n", encoding="ascii")
    return private, public, hex_key


def public_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise OtaConfigError(f"{path}: no such key file") from None
    except (ValueError, TypeError) as exc:
        raise OtaConfigError(f"{path}: not an unencrypted PEM private key ({exc})", code="keys_invalid") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise OtaConfigError(f"{path}: not an ed25519 key", code="keys_invalid")
    return key


def read_public_key(path: Path) -> str:
    """A ``.pub`` file's hex key (or the key itself given as text)."""
    text = Path(path).read_text(encoding="ascii").strip() if Path(path).is_file() else str(path).strip()
    try:
        if len(bytes.fromhex(text)) == PUBLIC_KEY_BYTES:
            return text.lower()
    except ValueError:
        pass
    raise OtaConfigError(f"{path}: not an ed25519 public key file (64 hexadecimal digits)", code="keys_invalid")


def sign(keys: Iterable[Ed25519PrivateKey], manifest: bytes) -> List[Tuple[bytes, bytes]]:
    """(public key, signature) for each key."""
    message = SIGNING_CONTEXT + manifest
    return [(bytes.fromhex(public_hex(key)), key.sign(message)) for key in keys]


# -- checking (kiosk side) --------------------------------------------------------------------------
def valid_signers(root: TrustRoot, signatures: Sequence[Tuple[bytes, bytes]], manifest: bytes) -> List[str]:
    """The distinct keys of ``root`` with a valid signature over ``manifest``."""
    message = SIGNING_CONTEXT + manifest
    trusted = set(root.keys)
    signers: List[str] = []
    for public, signature in signatures:
        key_hex = public.hex()
        if key_hex not in trusted or key_hex in signers:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        except InvalidSignature:
            continue
        signers.append(key_hex)
    return signers


def check_signatures(root: TrustRoot, signatures: Sequence[Tuple[bytes, bytes]], manifest: bytes, *, what: str) -> None:
    """``BundleRejected`` unless at least ``root.threshold`` trusted keys signed ``manifest``."""
    if not signatures:
        raise BundleRejected(f"{what}: not signed", code="unsigned")
    signers = valid_signers(root, signatures, manifest)
    if len(signers) < root.threshold:
        known = sum(1 for public, _ in signatures if public.hex() in root.keys)
        raise BundleRejected(
            f"{what}: signature not valid: {len(signers)} valid signature(s) by trusted keys, {root.threshold} needed "
            f"({len(signatures)} signature(s), {known} by a key of trust root version {root.version})",
            code="bad_signature")
