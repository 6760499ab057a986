"""Split a Piper VITS voice into the two TensorRT-ready engines the streaming TTS runs.

The voice as shipped computes its output length from the data (NonZero, CumSum, ScatterND,
RandomNormalLike), which TensorRT handles badly. It is cut into

* the **text part**: phoneme ids -> per-phoneme prior statistics (``m_p``, ``logs_p``, [1,192,N]) and
  durations in frames (``w_ceil``, [1,1,N]); the duration predictor's random draw becomes an input
  (``dp_noise``, zeros for repeatable timing) and its spline is computed on every element and selected
  with Where, so the only data-dependent dimension left is N;
* the **audio part**: a fixed window of latent frames (``z_p`` [1,192,W], ``y_mask`` [1,1,W]) ->
  ``audio`` [1,1,1,W*256]: only Conv, ConvTranspose, elementwise ops, Slice, Split, Concat.

Between them the TTS expands the statistics by the durations with numpy (the graph's "attention path"
is exactly a repeat). Everything works on ``onnx.ModelProto`` in memory with the ``onnx`` package only,
so an export gives the same bytes on every machine with the same onnx version (the engine manifests
pin the sha256 of the result).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

LOG = logging.getLogger(__name__)

FOLD_MAX_INPUT_ELEMENTS = 4096
"""Constant nodes are folded only when their inputs are small: shape arithmetic, not weights, so the
weights stay exactly as trained and the folded values are exact integers or small constants."""


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output if out}


def rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a tensor everywhere it appears (node inputs and outputs, graph inputs and outputs)."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def tensor_info(name: str, elem_type: int, shape: Iterable[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def toposort(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Order nodes so each comes after the producers of its inputs; stable for already sorted input."""
    ready = set(available) | {""}
    pending = list(nodes)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({n for node in rest for n in node.input if n not in ready})
            raise ValueError(f"graph has a cycle or unknown tensors: {missing[:5]}")
        pending = rest
    return ordered


def extract(model: onnx.ModelProto, inputs: list[onnx.ValueInfoProto], outputs: list[str]) -> onnx.ModelProto:
    """The part of ``model`` that computes ``outputs`` from ``inputs`` (tensors of the model, which
    become the new graph inputs). Raises if the part needs any other graph input."""
    graph = model.graph
    produced_by = producers(graph)
    initializers = {init.name: init for init in graph.initializer}
    boundary = {value.name for value in inputs}
    needed: set[str] = set()
    kept: set[int] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in needed or name in boundary or not name:
            continue
        needed.add(name)
        node = produced_by.get(name)
        if node is None:
            if name not in initializers:
                raise ValueError(f"tensor {name!r} is neither computed in the part nor one of its inputs")
            continue
        if id(node) not in kept:
            kept.add(id(node))
            stack.extend(node.input)
    nodes = [node for node in graph.node if id(node) in kept]
    used_inits = [initializers[name] for name in sorted(needed) if name in initializers]
    out_infos = []
    for name in outputs:
        out_infos.append(helper.make_empty_tensor_value_info(name))
    new_graph = helper.make_graph(nodes, graph.name, list(inputs), out_infos, initializer=used_inits)
    new_model = helper.make_model(new_graph, opset_imports=list(model.opset_import))
    new_model.ir_version = model.ir_version
    new_model.producer_name = "talkerd"
    return new_model


def prune(model: onnx.ModelProto) -> None:
    """Drop nodes and initializers that no graph output depends on."""
    graph = model.graph
    produced_by = producers(graph)
    needed: set[str] = set()
    stack = [out.name for out in graph.output]
    keep: set[int] = set()
    while stack:
        name = stack.pop()
        if name in needed or not name:
            continue
        needed.add(name)
        node = produced_by.get(name)
        if node is not None and id(node) not in keep:
            keep.add(id(node))
            stack.extend(node.input)
    nodes = [node for node in graph.node if id(node) in keep]
    del graph.node[:]
    graph.node.extend(nodes)
    inits = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.value_info[:]


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def _evaluate(node: onnx.NodeProto, values: dict[str, np.ndarray], opset: int) -> list[np.ndarray]:
    inputs = [name for name in node.input if name]
    infos = [tensor_info(name, helper.np_dtype_to_tensor_dtype(values[name].dtype), values[name].shape) for name in inputs]
    outs = [helper.make_empty_tensor_value_info(name) for name in node.output]
    graph = helper.make_graph([node], "fold", infos, outs)
    single = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    results = ReferenceEvaluator(single).run(None, {name: values[name] for name in inputs})
    return [np.asarray(result) for result in results]


def fold_constants(model: onnx.ModelProto) -> int:
    """Replace every node whose value is known before run time (shape arithmetic on fixed input shapes,
    operations on small constants) by an initializer. Returns the number of nodes folded."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    total = 0
    while True:
        graph = model.graph
        shapes = _static_shapes(model)
        values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        kept: list[onnx.NodeProto] = []
        new_inits: list[onnx.TensorProto] = []
        folded = 0
        for node in graph.node:
            result: list[np.ndarray] | None = None
            if node.op_type == "Constant":
                result = _evaluate(node, values, opset)
            elif node.op_type == "Shape" and node.input[0] in shapes and not node.attribute:
                result = [np.array(shapes[node.input[0]], dtype=np.int64)]
            elif node.input and all(not name or name in values for name in node.input):
                if sum(values[name].size for name in node.input if name) <= FOLD_MAX_INPUT_ELEMENTS:
                    result = _evaluate(node, values, opset)
            if result is None:
                kept.append(node)
                continue
            folded += 1
            for name, value in zip(node.output, result):
                values[name] = value
                new_inits.append(numpy_helper.from_array(value, name))
        if not folded:
            return total
        total += folded
        del graph.node[:]
        graph.node.extend(kept)
        graph.initializer.extend(new_inits)
        prune(model)


def skip_zero_adds(model: onnx.ModelProto) -> int:
    """Remove ``Add(x, 0)`` where the constant is all zeros and does not change x's shape (the
    exporter's stand-in for an absent conditioning input)."""
    graph = model.graph
    shapes = _static_shapes(model)
    inits = {init.name: init for init in graph.initializer}
    replaced = 0
    for node in list(graph.node):
        if node.op_type != "Add":
            continue
        for keep_index, const_index in ((0, 1), (1, 0)):
            const, other = node.input[const_index], node.input[keep_index]
            if const in inits and other in shapes and node.output[0] in shapes:
                array = numpy_helper.to_array(inits[const])
                if not array.any() and shapes[other] == shapes[node.output[0]]:
                    graph.node.remove(node)
                    rename_tensor(graph, node.output[0], other)
                    replaced += 1
                    break
    prune(model)
    return replaced


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


# --- the Piper voice -------------------------------------------------------------------------------

TEXT_INPUTS = ("input", "input_lengths", "scales")
M_P, LOGS_P, W_CEIL = "/enc_p/Split_output_0", "/enc_p/Split_output_1", "/Ceil_output_0"
DP_RANDOM = "/dp/RandomNormalLike"
Z_P, Y_MASK, AUDIO = "/Add_output_0", "/Cast_2_output_0", "output"
SPLINE_FLOWS = ("/dp/flows.3", "/dp/flows.5", "/dp/flows.7")
"""The duration predictor's ConvFlows that run in inference (flows.1 is skipped by the model)."""
LATENT_CHANNELS = 192
SAMPLES_PER_FRAME = 256

TAIL_BOUND = 5.0
MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3
SEARCH_EPS = 1e-6


class _Builder:
    """Appends nodes and constants under one name prefix."""

    def __init__(self, graph: onnx.GraphProto, prefix: str) -> None:
        self.graph, self.prefix, self.count = graph, prefix, 0
        self.names: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        full = f"{self.prefix}/{name}"
        if full not in self.names:
            self.names.add(full)
            self.graph.initializer.append(numpy_helper.from_array(value, full))
        return full

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        self.count += 1
        out = f"{self.prefix}/{op_type}_{self.count}"
        self.graph.node.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _spline_inverse(b: _Builder, x: str, widths: str, heights: str, derivs: str, bins: int) -> str:
    """The inverse unconstrained rational-quadratic spline (Durkan et al. 2019, linear tails) on every
    element of ``x`` [B,1,T], selecting the identity outside [-tail, tail] with Where. The order of the
    arithmetic follows the exported model so the durations come out the same."""
    f32 = np.float32
    lo, hi = b.const("lo", np.array(-TAIL_BOUND, f32)), b.const("hi", np.array(TAIL_BOUND, f32))
    min_bin = b.const("min_bin", np.array(MIN_BIN, f32))
    bin_scale = b.const("bin_scale", np.array(f32(1.0) - f32(bins) * f32(MIN_BIN), f32))
    span = b.const("span", np.array(2 * TAIL_BOUND, f32))
    # A running sum as a product with a triangular matrix: exact (adds zeros), and no CumSum.
    upper = b.const("upper", np.triu(np.ones((bins, bins), f32)))
    edge_derivative = b.const("edge_d", np.array(np.log(np.expm1(1.0 - MIN_DERIVATIVE)), f32))
    min_d = b.const("min_d", np.array(MIN_DERIVATIVE, f32))
    eps = b.const("eps", np.array(SEARCH_EPS, f32))
    two, four = b.const("two", np.array(2.0, f32)), b.const("four", np.array(4.0, f32))
    last_axis = b.const("last_axis", np.array([-1], np.int64))
    pad_left = b.const("pad_left", np.array([0, 0, 0, 1, 0, 0, 0, 0], np.int64))
    pad_right = b.const("pad_right", np.array([0, 0, 0, 0, 0, 0, 0, 1], np.int64))
    pad_both = b.const("pad_both", np.array([0, 0, 0, 1, 0, 0, 0, 1], np.int64))

    def index(*values: int) -> str:
        return b.const(f"i{'_'.join(map(str, values))}".replace("-", "m"), np.array(values, np.int64))

    def take(tensor: str, start: int, end: int) -> str:
        return b.op("Slice", tensor, index(start), index(end), last_axis)

    def knots(unnormalized: str) -> tuple[str, str]:
        """Bin edges [.., bins+1] from -tail to tail, and bin sizes [.., bins]."""
        sizes = b.op("Add", b.op("Mul", bin_scale, b.op("Softmax", unnormalized, axis=-1)), min_bin)
        running = b.op("Add", b.op("Mul", take(b.op("MatMul", sizes, upper), 0, bins - 1), span), lo)
        edges = b.op("Pad", b.op("Pad", running, pad_left, lo), pad_right, hi)
        return edges, b.op("Sub", take(edges, 1, bins + 1), take(edges, 0, bins))

    inside = b.op("And", b.op("GreaterOrEqual", x, lo), b.op("LessOrEqual", x, hi))
    xin = b.op("Clip", x, lo, hi)
    cum_w, bin_w = knots(widths)
    cum_h, bin_h = knots(heights)
    deriv = b.op("Add", b.op("Softplus", b.op("Pad", derivs, pad_both, edge_derivative)), min_d)
    # Which bin each element falls in, as a one-hot over the bins (a searchsorted without gathers).
    locations = b.op("Concat", take(cum_h, 0, bins), b.op("Add", take(cum_h, bins, bins + 1), eps), axis=-1)
    above = b.op("Cast", b.op("GreaterOrEqual", b.op("Unsqueeze", xin, last_axis), locations), to=onnx.TensorProto.FLOAT)
    onehot = b.op("Sub", take(above, 0, bins), take(above, 1, bins + 1))

    def pick(per_bin: str) -> str:
        return b.op("ReduceSum", b.op("Mul", onehot, per_bin), last_axis, keepdims=0)

    in_cw, in_w = pick(take(cum_w, 0, bins)), pick(bin_w)
    in_ch, in_h = pick(take(cum_h, 0, bins)), pick(bin_h)
    in_delta = pick(b.op("Div", bin_h, bin_w))
    in_d, in_d1 = pick(take(deriv, 0, bins)), pick(take(deriv, 1, bins + 1))
    # Solve the quadratic a*t^2 + b*t + c = 0 for the position t within the bin.
    offset = b.op("Sub", xin, in_ch)
    slope_sum = b.op("Sub", b.op("Add", in_d, in_d1), b.op("Mul", in_delta, two))
    term = b.op("Mul", offset, slope_sum)
    qa = b.op("Add", term, b.op("Mul", in_h, b.op("Sub", in_delta, in_d)))
    qb = b.op("Sub", b.op("Mul", in_h, in_d), term)
    qc = b.op("Mul", b.op("Neg", in_delta), offset)
    disc = b.op("Sub", b.op("Pow", qb, two), b.op("Mul", b.op("Mul", qa, four), qc))
    root = b.op("Div", b.op("Mul", qc, two), b.op("Sub", b.op("Neg", qb), b.op("Sqrt", disc)))
    y = b.op("Add", b.op("Mul", root, in_w), in_cw)
    return b.op("Where", inside, y, x)


def _node(graph: onnx.GraphProto, name: str) -> onnx.NodeProto:
    for node in graph.node:
        if node.name == name:
            return node
    raise ValueError(f"no node {name}: this voice is not a supported Piper export")


def _replace_splines(model: onnx.ModelProto, bins: int = 10) -> None:
    """Swap each duration-predictor spline (GatherND/ScatterND over the inside elements) for one that
    runs on all elements."""
    graph = model.graph
    for flow in SPLINE_FLOWS:
        builder = _Builder(graph, f"{flow}/spline")
        out = _spline_inverse(builder, f"{flow}/Split_output_1", f"{flow}/Div_output_0", f"{flow}/Div_1_output_0",
                              f"{flow}/Slice_2_output_0", bins)
        concat = _node(graph, f"{flow}/Concat_20")
        if concat.input[1] != f"{flow}/ScatterND_9_output_0":
            raise ValueError(f"{flow}: unexpected graph layout; this voice is not a supported Piper export")
        concat.input[1] = out


def export_text_part(source: onnx.ModelProto) -> onnx.ModelProto:
    """Phoneme ids -> m_p, logs_p, w_ceil, with the duration noise as the input ``dp_noise`` [1,2,N]."""
    inputs = [value for value in source.graph.input if value.name in TEXT_INPUTS]
    noise = tensor_info("dp_noise", onnx.TensorProto.FLOAT, [1, 2, "phonemes"])
    model = extract(source, inputs, [M_P, LOGS_P, W_CEIL])
    graph = model.graph
    random = _node(graph, DP_RANDOM)
    graph.node.remove(random)
    rename_tensor(graph, random.output[0], noise.name)
    graph.input.append(noise)
    _replace_splines(model)
    ordered = toposort(list(graph.node), {v.name for v in graph.input} | {i.name for i in graph.initializer})
    del graph.node[:]
    graph.node.extend(ordered)
    prune(model)
    for old, new in ((M_P, "m_p"), (LOGS_P, "logs_p"), (W_CEIL, "w_ceil")):
        rename_tensor(graph, old, new)
    del graph.output[:]
    graph.output.extend([tensor_info("m_p", onnx.TensorProto.FLOAT, [1, LATENT_CHANNELS, "phonemes"]),
                         tensor_info("logs_p", onnx.TensorProto.FLOAT, [1, LATENT_CHANNELS, "phonemes"]),
                         tensor_info("w_ceil", onnx.TensorProto.FLOAT, [1, 1, "phonemes"])])
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name in ("input", "input_lengths"):
            dims[0].dim_value = 1  # one clause at a time
    onnx.checker.check_model(model)
    return model


def export_audio_part(source: onnx.ModelProto, window: int) -> onnx.ModelProto:
    """A window of latent frames -> audio: z_p [1,192,W], y_mask [1,1,W] -> audio [1,1,1,W*256]."""
    z = tensor_info(Z_P, onnx.TensorProto.FLOAT, [1, LATENT_CHANNELS, window])
    mask = tensor_info(Y_MASK, onnx.TensorProto.FLOAT, [1, 1, window])
    model = extract(source, [z, mask], [AUDIO])
    graph = model.graph
    rename_tensor(graph, Z_P, "z_p")
    rename_tensor(graph, Y_MASK, "y_mask")
    rename_tensor(graph, AUDIO, "audio")
    del graph.output[:]
    graph.output.append(tensor_info("audio", onnx.TensorProto.FLOAT, [1, 1, 1, window * SAMPLES_PER_FRAME]))
    folded = fold_constants(model)
    zeros = skip_zero_adds(model)
    LOG.info("audio part: folded %d constant nodes, removed %d additions of zero", folded, zeros)
    onnx.checker.check_model(model)
    return model
