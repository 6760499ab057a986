"""The shape of a GGUF model from its header alone: metadata and tensor infos, never the weights.

``gguf.GGUFReader`` maps the whole file and turns every metadata array into numpy objects: for a
49k-token vocabulary that is ~1.9 s and ~150 MB of transient Python objects, paid inside the daemon
before anything loads. This reader walks the same format with ``gguf``'s own type tables, keeps the
scalar metadata, counts arrays without decoding them, and sums the tensor sizes from their infos.
The tests check it against ``GGUFReader`` on real files.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGMLQuantizationType, GGUFValueType

from ..errors import ConfigError

_SCALARS = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H", GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i", GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q", GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}
MAX_STRING = 1 << 24
"""Longer strings mean a corrupt file (the longest real ones are chat templates of a few KB)."""


@dataclass(frozen=True)
class GgufModel:
    """What the memory planner needs to know about a GGUF language model."""

    path: Path
    """The file."""
    architecture: str
    """``general.architecture`` (llama, qwen2, ...); the prefix of the model's metadata keys."""
    n_layer: int
    """Transformer blocks."""
    n_embd: int
    """Width of the residual stream."""
    n_head: int
    """Query heads."""
    n_head_kv: int
    """Key/value heads."""
    head_dim_k: int
    """Width of one key head."""
    head_dim_v: int
    """Width of one value head."""
    n_ff: int
    """Width of the feed-forward layer."""
    n_vocab: int
    """Vocabulary size."""
    n_ctx_train: int
    """Context length the model was trained for."""
    weights_bytes: int
    """Sum of the tensor sizes declared by the tensor infos."""
    file_bytes: int
    """Size of the file."""


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle = handle
        self._path = path

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        data = self._handle.read(size)
        if len(data) != size:
            raise ConfigError(f"{self._path}: GGUF header is truncated")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > MAX_STRING:
            raise ConfigError(f"{self._path}: GGUF header is corrupt (a string of {length} bytes)")
        data = self._handle.read(length)
        if len(data) != length:
            raise ConfigError(f"{self._path}: GGUF header is truncated")
        return data.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.unpack("<Q")
        if length > MAX_STRING:
            raise ConfigError(f"{self._path}: GGUF header is corrupt (a string of {length} bytes)")
        self._handle.seek(length, 1)

    def value(self, kind: int):
        """A scalar or string value; an array is skipped and returned as its length."""
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            if item_kind == GGUFValueType.STRING:
                for _ in range(count):
                    self.skip_string()
            elif item_kind in _SCALARS:
                self._handle.seek(count * struct.calcsize(_SCALARS[GGUFValueType(item_kind)]), 1)
            else:
                raise ConfigError(f"{self._path}: GGUF header has an array of unsupported type {item_kind}")
            return count
        try:
            return self.unpack(_SCALARS[GGUFValueType(kind)])
        except (KeyError, ValueError):
            raise ConfigError(f"{self._path}: GGUF header has a value of unknown type {kind}") from None


def _tensor_bytes(dims: tuple[int, ...], kind: int, path: Path, name: str) -> int:
    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (KeyError, ValueError):
        raise ConfigError(f"{path}: tensor {name} has an unknown type {kind}") from None
    elements = 1
    for d in dims:
        elements *= d
    return elements // block * size


def read_header(path: str | Path) -> tuple[dict[str, object], dict[str, tuple[tuple[int, ...], int]], int]:
    """(metadata, tensor name → (dims, bytes), total tensor bytes). Arrays appear as their length."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such model file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = _Reader(handle, path)
        if reader.unpack("<I") != GGUF_MAGIC:
            raise ConfigError(f"{path}: not a GGUF file")
        version = reader.unpack("<I")
        if version < 2:
            raise ConfigError(f"{path}: GGUF version {version} is too old (need 2 or later)")
        n_tensors, n_kv = reader.unpack("<Q"), reader.unpack("<Q")
        metadata: dict[str, object] = {}
        for _ in range(n_kv):
            key = reader.string()
            metadata[key] = reader.value(reader.unpack("<I"))
        tensors: dict[str, tuple[tuple[int, ...], int]] = {}
        total = 0
        for _ in range(n_tensors):
            name = reader.string()
            n_dims = reader.unpack("<I")
            dims = tuple(reader.unpack("<Q") for _ in range(n_dims))
            kind = reader.unpack("<I")
            reader.unpack("<Q")  # offset in the data section
            size = _tensor_bytes(dims, kind, path, name)
            tensors[name] = (dims, size)
            total += size
    return metadata, tensors, total


def read_gguf_model(path: str | Path) -> GgufModel:
    """The dimensions and weight size of a GGUF transformer; ``ConfigError`` for anything unreadable."""
    path = Path(path)
    metadata, tensors, total = read_header(path)
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise ConfigError(f"{path}: GGUF metadata has no general.architecture")

    def key(name: str, default: int | None = None) -> int:
        value = metadata.get(f"{arch}.{name}", default)
        if value is None:
            raise ConfigError(f"{path}: GGUF metadata has no {arch}.{name}")
        return int(value)  # type: ignore[arg-type]

    n_embd, n_head = key("embedding_length"), key("attention.head_count")
    embeddings = tensors.get("token_embd.weight", ((0, 0), 0))[0]
    n_vocab = metadata.get(f"{arch}.vocab_size") or metadata.get("tokenizer.ggml.tokens") or embeddings[-1]
    return GgufModel(
        path=path,
        architecture=arch,
        n_layer=key("block_count"),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=key("attention.head_count_kv", n_head),
        head_dim_k=key("attention.key_length", n_embd // n_head),
        head_dim_v=key("attention.value_length", n_embd // n_head),
        n_ff=key("feed_forward_length", 4 * n_embd),
        n_vocab=int(n_vocab),  # type: ignore[arg-type]
        n_ctx_train=key("context_length", 0),
        weights_bytes=total,
        file_bytes=path.stat().st_size,
    )


__all__ = ["GGUF_DEFAULT_ALIGNMENT", "GgufModel", "read_gguf_model", "read_header"]
