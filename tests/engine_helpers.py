"""Building small real engine folders for the engine tests: an ONNX made with onnx.helper and its manifest."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from talkerd.config import EnginesConfig

ROOT = Path(__file__).resolve().parent.parent

AFFINE_MANIFEST = """\
name = "{name}"
kind = "face"
version = "1.0.0"
onnx = "{name}.onnx"
sha256 = "{sha256}"
precision = "fp16"
frame_rate = 30
memory_mb = 1

[metadata]
window_frames = "8"

[[inputs]]
name = "x"
dtype = "float32"
min = [1, 1]
opt = [1, 8]
max = [1, 64]

[[outputs]]
name = "y"
dtype = "float32"

[[outputs]]
name = "pos"
dtype = "int64"
"""


def affine_onnx() -> bytes:
    """y = 2x + 1 and pos = NonZero(x > 0): one fixed-size and one data-dependent output."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Mul", ["x", "two"], ["twice"]),
        helper.make_node("Add", ["twice", "one"], ["y"]),
        helper.make_node("Greater", ["x", "zero"], ["positive"]),
        helper.make_node("NonZero", ["positive"], ["pos"]),
    ]
    constants = [
        helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    graph = helper.make_graph(
        nodes, "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"]),
         helper.make_tensor_value_info("pos", TensorProto.INT64, [2, "k"])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_engines(root: Path, name: str = "affine", *, onnx_in_build_dir: bool = False) -> EnginesConfig:
    """``root/engines/<name>/`` with manifest (and ONNX, or the ONNX under ``root/build/<name>/``)."""
    data = affine_onnx()
    engines, build = root / "engines", root / "build"
    folder = engines / name
    folder.mkdir(parents=True)
    onnx_dir = build / name if onnx_in_build_dir else folder
    onnx_dir.mkdir(parents=True, exist_ok=True)
    (onnx_dir / f"{name}.onnx").write_bytes(data)
    (folder / "manifest.toml").write_text(
        AFFINE_MANIFEST.format(name=name, sha256=hashlib.sha256(data).hexdigest()), encoding="utf-8")
    build.mkdir(exist_ok=True)
    return EnginesConfig(dir=engines, build_dir=build, backend="auto", cpu_threads=1)


def expected(x: np.ndarray) -> dict:
    return {"y": x * 2 + 1, "pos": np.array(np.nonzero(x > 0), dtype=np.int64)}


def write_config(path: Path, cfg: EnginesConfig, *, face_engine: str | None = None) -> Path:
    """The development config with its engines section pointing at ``cfg`` and every other path absolute."""
    text = (ROOT / "configs" / "default.toml").read_text()
    text = text.replace('dir = "../engines"', f'dir = "{cfg.dir}"').replace(
        'build_dir = "../var/engines"', f'build_dir = "{cfg.build_dir}"')
    text = text.replace('"../', f'"{ROOT}/')
    # The engines folder here holds only the test's engines: name the face engine it has, or none.
    face_line = 'engine = "face-mouth"\n'
    assert face_line in text, "the default config no longer names its face engine as expected"
    text = text.replace(face_line, f'engine = "{face_engine}"\n' if face_engine else "")
    path.write_text(text)
    return path
