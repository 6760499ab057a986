#!/usr/bin/env python3
"""The reference embedding of all-MiniLM-L6-v2: a plain numpy forward pass from the safetensors weights.

A second implementation of the sentence encoder, written from the BERT definition rather than from the
ONNX export (tools/export_minilm.py), so that the two agreeing on a fixed sentence means the export is
right. It wrote engines/minilm-l6/reference.json once; run it again only when the model changes:

    tools/minilm_reference.py var/models/all-MiniLM-L6-v2.zip engines/minilm-l6/reference.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from export_minilm import TOKENIZER_MEMBER, load_weights, read_member  # noqa: E402

REFERENCE_SENTENCE = "Where can I return something I bought last week?"


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def embed(weights: dict[str, np.ndarray], config: dict, ids: np.ndarray) -> np.ndarray:
    """One sentence's token ids (no padding) → its unit-length mean-pooled embedding, in float64."""
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype.kind == "f"}
    eps, heads, size = config["layer_norm_eps"], config["num_attention_heads"], config["hidden_size"]
    head = size // heads
    n = len(ids)

    def linear(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        q, k, v = (linear(x, f"{p}.attention.self.{part}").reshape(n, heads, head).transpose(1, 0, 2)
                   for part in ("query", "key", "value"))
        context = (_softmax(q @ k.transpose(0, 2, 1) / np.sqrt(head)) @ v).transpose(1, 0, 2).reshape(n, size)
        x = _layer_norm(linear(context, f"{p}.attention.output.dense") + x,
                        w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"], eps)
        inner = _gelu(linear(x, f"{p}.intermediate.dense"))
        x = _layer_norm(linear(inner, f"{p}.output.dense") + x,
                        w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps)
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def reference(source: Path, sentence: str = REFERENCE_SENTENCE) -> dict:
    """The reference record for ``sentence``: the sentence, its token ids and its embedding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(read_member(source, TOKENIZER_MEMBER).decode())
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128: one sentence needs no padding
    ids = np.asarray(tokenizer.encode(sentence).ids, dtype=np.int64)
    weights, config = load_weights(source)
    vector = embed(weights, config, ids)
    return {"sentence": sentence, "token_ids": ids.tolist(), "embedding": [round(float(v), 7) for v in vector]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the packaged model folder (zip)")
    parser.add_argument("output", type=Path, help="where to write the reference JSON")
    args = parser.parse_args(argv)
    record = reference(args.source)
    args.output.write_text(json.dumps(record, indent=1) + "\n")
    print(f"minilm_reference: {len(record['embedding'])} values for {record['sentence']!r} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
