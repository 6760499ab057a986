"""Small llama-architecture GGUF files for tests, written with the ``gguf`` package.

``write_tiny_llama`` writes a complete random-weight model (a few hundred KB) that llama.cpp loads and
runs in milliseconds: a byte-fallback SentencePiece vocabulary, a ChatML template, f32 weights. Its
answers are gibberish, but every code path of loading, prompting, streaming and memory use is real.

``write_llama_header`` writes the header of a large model — real metadata and real tensor infos
(names, shapes, quantisation types) — followed by a *sparse* hole as long as the tensor data would
be. The file has the true size and layout of, say, a 1.1 GB Q4_K_M model while taking no disk space;
it is for planning memory, not for loading.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter, TokenType

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class LlamaDims:
    """The shape of a llama-style transformer."""

    n_layer: int = 2
    """Transformer blocks."""
    n_embd: int = 64
    """Width of the residual stream."""
    n_head: int = 4
    """Query heads."""
    n_head_kv: int = 2
    """Key/value heads (grouped-query attention when fewer than ``n_head``)."""
    n_ff: int = 128
    """Width of the feed-forward layer."""
    n_vocab: int = 0
    """Vocabulary size; 0 for the byte-fallback vocabulary ``write_tiny_llama`` builds."""
    n_ctx_train: int = 2048
    """Context length the model was trained for."""
    head_dim: int = 0
    """Per-head width; 0 for ``n_embd // n_head``."""
    tied_embeddings: bool = True
    """No separate output matrix: the token embeddings are reused for the logits."""

    @property
    def head_size(self) -> int:
        return self.head_dim or self.n_embd // self.n_head


QWEN25_1_5B = LlamaDims(n_layer=28, n_embd=1536, n_head=12, n_head_kv=2, n_ff=8960, n_vocab=151936,
                        n_ctx_train=32768, head_dim=128)
"""Qwen2.5-1.5B-Instruct's dimensions."""
QWEN25_3B = LlamaDims(n_layer=36, n_embd=2048, n_head=16, n_head_kv=2, n_ff=11008, n_vocab=151936,
                      n_ctx_train=32768, head_dim=128)
"""Qwen2.5-3B-Instruct's dimensions."""


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    """<unk> <s> </s>, the 256 byte tokens (so any text tokenises), the ChatML markers, letters."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["<|im_start|>", "<|im_end|>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    types += [TokenType.CONTROL, TokenType.CONTROL]
    pieces = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["\u2581" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (len(tokens) - len(pieces)) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def _tensor_shapes(dims: LlamaDims) -> list[tuple[str, tuple[int, ...]]]:
    """llama.cpp's tensor names and shapes (numpy order: rows, columns) for ``dims``."""
    q, kv = dims.n_head * dims.head_size, dims.n_head_kv * dims.head_size
    shapes = [("token_embd.weight", (dims.n_vocab, dims.n_embd)), ("output_norm.weight", (dims.n_embd,))]
    if not dims.tied_embeddings:
        shapes.append(("output.weight", (dims.n_vocab, dims.n_embd)))
    for i in range(dims.n_layer):
        shapes += [
            (f"blk.{i}.attn_norm.weight", (dims.n_embd,)),
            (f"blk.{i}.attn_q.weight", (q, dims.n_embd)),
            (f"blk.{i}.attn_k.weight", (kv, dims.n_embd)),
            (f"blk.{i}.attn_v.weight", (kv, dims.n_embd)),
            (f"blk.{i}.attn_output.weight", (dims.n_embd, q)),
            (f"blk.{i}.ffn_norm.weight", (dims.n_embd,)),
            (f"blk.{i}.ffn_gate.weight", (dims.n_ff, dims.n_embd)),
            (f"blk.{i}.ffn_up.weight", (dims.n_ff, dims.n_embd)),
            (f"blk.{i}.ffn_down.weight", (dims.n_embd, dims.n_ff)),
        ]
    return shapes


def _add_metadata(writer: GGUFWriter, dims: LlamaDims, name: str) -> None:
    writer.add_name(name)
    writer.add_block_count(dims.n_layer)
    writer.add_context_length(dims.n_ctx_train)
    writer.add_embedding_length(dims.n_embd)
    writer.add_feed_forward_length(dims.n_ff)
    writer.add_head_count(dims.n_head)
    writer.add_head_count_kv(dims.n_head_kv)
    writer.add_key_length(dims.head_size)
    writer.add_value_length(dims.head_size)
    writer.add_rope_dimension_count(dims.head_size)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(dims.n_vocab)


def write_tiny_llama(path: str | os.PathLike, dims: LlamaDims = LlamaDims(), *, seed: int = 0) -> Path:
    """Write a loadable random-weight llama GGUF (f32 weights) and return its path.

    ``dims.n_vocab`` is ignored: the vocabulary is the built-in byte-fallback one.
    """
    path = Path(path)
    tokens, scores, types = _vocabulary()
    dims = LlamaDims(**{**dims.__dict__, "n_vocab": len(tokens)})
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), "llama")
    _add_metadata(writer, dims, "tiny-random-llama")
    writer.add_file_type(0)  # all f32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)
    for name, shape in _tensor_shapes(dims):
        if len(shape) == 1:  # norms: ones keep activations in range
            data = np.ones(shape, dtype=np.float32)
        else:
            data = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _quantised_nbytes(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    elements = int(np.prod(shape))
    if shape[-1] % block:
        raise ValueError(f"a row of {shape[-1]} does not split into {qtype.name} blocks of {block}")
    return elements // block * size


def q4_k_m_types(dims: LlamaDims) -> dict[str, GGMLQuantizationType]:
    """Quantisation types in the spirit of llama.cpp's Q4_K_M mix: Q6_K for the embeddings and for
    attn_v / ffn_down in every other block, Q4_K elsewhere, norms f32."""
    types: dict[str, GGMLQuantizationType] = {}
    for name, shape in _tensor_shapes(dims):
        if len(shape) == 1:
            types[name] = GGMLQuantizationType.F32
        elif name == "token_embd.weight" or (
            (name.endswith("attn_v.weight") or name.endswith("ffn_down.weight")) and int(name.split(".")[1]) % 2 == 0
        ):
            types[name] = GGMLQuantizationType.Q6_K
        else:
            types[name] = GGMLQuantizationType.Q4_K
    return types


def write_llama_header(path: str | os.PathLike, dims: LlamaDims, *, arch: str = "llama",
                       name: str = "header-only", types: dict[str, GGMLQuantizationType] | None = None) -> Path:
    """Write real metadata and tensor infos for ``dims`` and a sparse hole for the tensor data.

    ``types`` maps tensor names to quantisation types (default: ``q4_k_m_types``). The file's
    tensor infos and size are those of the real model; its data is zeros and must not be loaded.
    """
    path = Path(path)
    types = types or q4_k_m_types(dims)
    writer = GGUFWriter(str(path), arch)
    _add_metadata(writer, dims, name)
    writer.add_file_type(15)  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    writer.add_tokenizer_model("gpt2")
    data_bytes = 0
    for tensor_name, shape in _tensor_shapes(dims):
        qtype = types[tensor_name]
        nbytes = _quantised_nbytes(shape, qtype)
        # gguf takes a quantised tensor's shape in bytes per row when the dtype is uint8
        row_bytes = nbytes // int(np.prod(shape[:-1])) if len(shape) > 1 else nbytes
        byte_shape = (*shape[:-1], row_bytes)
        writer.add_tensor_info(tensor_name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qtype)
        data_bytes += GGUFWriter.ggml_pad(nbytes, writer.data_alignment)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    with path.open("r+b") as handle:
        handle.seek(0, os.SEEK_END)
        start = GGUFWriter.ggml_pad(handle.tell(), writer.data_alignment)
        handle.truncate(start + data_bytes)  # a hole: the size is real, the disk blocks are not used
    return path
