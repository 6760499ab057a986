"""Memory estimates per component, from metadata only: GGUF headers, folder sizes, manifests, sidecars.

Every constant was calibrated on the development machine (x86_64, Python 3.11, llama-cpp-python
0.3.36, vosk 0.3.45, ONNX Runtime 1.32, OpenCV 5 with Qt on Xvfb) by loading the real component in
a fresh process and reading VmRSS before and after; ``python -m talkerd.memory.probe`` repeats that
measurement. Sizes are MiB throughout.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, EnginesConfig
from ..errors import ConfigError
from .gguf_header import GgufModel

MIB = 1024 * 1024

RUNTIME_MB = 150.0
"""The interpreter with everything the daemon imports (numpy, onnxruntime, vosk, llama_cpp, cv2,
pydantic, piper, pyaudio, rapidfuzz): 147 MiB measured with the versions of 2026-12 (54 anonymous, 93
of mapped library pages), 120 with those of 2026-11. It follows the installed library versions, not a
formula, so ``python -m talkerd.memory.probe`` prints it and no test judges it."""

LLM_FIXED_MB = 4.5
"""llama.cpp context, graph metadata and llama-cpp-python's own arrays, apart from the vocabulary."""
LLM_BYTES_PER_TOKEN = 360
"""Vocabulary tables (token texts, lookup maps, merges) per vocabulary entry: 21.5 MiB for SmolLM2's
49152 tokens against 4.6 MiB for a 314-token model."""
LLM_N_BATCH = 512
"""llama-cpp-python's default n_batch (= n_ubatch), capped at n_ctx."""
KV_BYTES = 2
"""The KV cache is f16."""
CUDA_RUNTIME_MB = 600.0
"""CUDA context and cuBLAS kernels in a process that offloads llama.cpp layers. From published Jetson
figures, not measured here; tools/jetson-acceptance measures it on the kiosk."""
TENSORRT_RUNTIME_MB = 200.0
"""The TensorRT runtime library and its execution contexts beyond the sidecar's device memory (also
from documentation; measured by tools/jetson-acceptance)."""

VOSK_FACTOR = 2.05
"""Resident size ÷ model folder size: 517.7 MiB resident (model, recogniser, 10 s of audio) for the
252 MiB Korean model. Kaldi expands the compressed graph and acoustic model on load."""
VOSK_WARM_UP_MB_PER_QUESTION = 12.0
"""The graph cache a recogniser keeps per warm-up question (``asr.warm_up_questions``): 36 MiB of C heap
for 3 venue questions, 87 MiB for 10 (tools/asr_warm_up_bench.py). It is there twice while a renewal
warms a fresh recogniser beside the one in use."""

ORT_SESSION_MB = 13.0
"""An ONNX Runtime CPU session's own memory beyond its weights (Silero VAD: 14.6 MiB for 1.3 MiB)."""

KNOWLEDGE_FIXED_MB = 1.5
"""The venue index's tables and the matcher (2 MiB measured for the default venue's 31 entries)."""
KNOWLEDGE_MB_PER_ENTRY = 0.02
"""Per curated entry or fact line: its questions, keywords and index rows."""

RENDER_FIXED_MB = 18.8
"""OpenCV HighGUI with Qt's xcb platform plug-in, fonts, the window and the avatar's small parts."""
RENDER_FRAMES = 10.7
"""Frame-sized buffers resident while the default avatar draws: its pre-painted layers, the frame
it draws into, and Qt's converted image and backing store. Fitted from the real renderer drawing a
second of frames into a window on Xvfb: 25.8, 47.0 and 82.2 MiB at 640×360, 1280×720 and
1920×1080 (the fit is exact to 0.1 MiB at all three)."""


@dataclass(frozen=True)
class Estimate:
    """One component's planned memory and how it was worked out."""

    name: str
    """The component, as the meter and status name it."""
    planned_mb: float
    """Planned resident memory."""
    detail: str
    """The sum written out, for the table."""
    note: str = ""
    """Something the operator should know (a component not counted, a guess)."""
    on_tensorrt: bool = False
    """Runs on TensorRT engines (so the plan counts the TensorRT runtime once)."""


def folder_bytes(path: Path) -> int:
    """Apparent size of every file under ``path`` (following the top-level link, as loaders do)."""
    total = 0
    for root, _dirs, files in os.walk(path, followlinks=True):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                continue  # a dangling link inside the model is the loader's problem, not the plan's
    return total


def runtime_estimate(config: Config) -> Estimate:
    return Estimate("runtime", RUNTIME_MB, f"Python and libraries {RUNTIME_MB:.0f} MB (measured)")


@dataclass(frozen=True)
class LlmFigures:
    """The parts of the LLM's memory at one context length."""

    weights_mb: float
    kv_mb: float
    compute_mb: float
    fixed_mb: float

    @property
    def total_mb(self) -> float:
        return self.weights_mb + self.kv_mb + self.compute_mb + self.fixed_mb


def llm_figures(model: GgufModel, n_ctx: int, gpu: bool) -> LlmFigures:
    """Weights + KV cache + compute buffers + fixed overhead for ``model`` at ``n_ctx``.

    KV cache: n_ctx × n_layer × n_head_kv × (head_dim_k + head_dim_v) × 2 bytes (f16).

    Compute, CPU: what a full context really touches. llama.cpp reserves its graph buffer for the
    worst batch (n_ubatch tokens, every one producing logits), but llama-cpp-python asks for the last
    token's logits only, so the vocabulary-sized part is never written. What is written is the
    attention of a batch against the whole cache — scores in f32 (4·n_head), the mask (4) and the
    scores converted to f16 for the product with V in ggml's work buffer (2·n_head) — plus the
    batch's feed-forward activations:
        n_ubatch × (n_ctx × (6·n_head + 4) + 4 × (2·n_ff + n_embd)) bytes.
    Calibrated on SmolLM2-135M at n_ctx 1024/2048/4096 (planned 172/224/327 MiB for the whole LLM
    against 172/232/325 measured with the context filled) and on a 2-layer random model (13/63
    planned against 13/64 at n_ctx 512/4096).

    Compute, GPU: cudaMalloc commits the whole reserved buffer, so the plan takes llama.cpp's
    reservation, the larger of the logits and the attention branches:
        4 × n_ubatch × max(n_vocab + 3·n_embd, (n_head + 1) × n_ctx + 6·n_embd) bytes
    (this reproduces llama.cpp's own "compute buffer size" log line: 98.3/99.4/166.4 MiB for
    SmolLM2 at 512/4096/8192).
    """
    n_ubatch = min(LLM_N_BATCH, n_ctx)
    kv = n_ctx * model.n_layer * model.n_head_kv * (model.head_dim_k + model.head_dim_v) * KV_BYTES
    if gpu:
        compute = 4 * n_ubatch * max(model.n_vocab + 3 * model.n_embd,
                                     (model.n_head + 1) * n_ctx + 6 * model.n_embd)
    else:
        compute = n_ubatch * (n_ctx * (6 * model.n_head + 4) + 4 * (2 * model.n_ff + model.n_embd))
    fixed = LLM_FIXED_MB * MIB + LLM_BYTES_PER_TOKEN * model.n_vocab
    return LlmFigures(model.weights_bytes / MIB, kv / MIB, compute / MIB, fixed / MIB)


def llm_estimate(model: GgufModel, n_ctx: int, gpu: bool) -> Estimate:
    f = llm_figures(model, n_ctx, gpu)
    where = "GPU" if gpu else "CPU"
    detail = (f"weights {f.weights_mb:.0f} MB + KV {f.kv_mb:.0f} MB (n_ctx {n_ctx}) + "
              f"compute {f.compute_mb:.0f} MB ({where}) + runtime {f.fixed_mb:.0f} MB")
    return Estimate("llm", f.total_mb, detail)


def asr_estimate(config: Config) -> Estimate:
    path = config.asr.model
    if not path.is_dir():
        return Estimate("asr", 0.0, "not counted", f"asr: not counted: no vosk model folder at {path}")
    size_mb = folder_bytes(path) / MIB
    warm_mb = 2 * config.asr.warm_up_questions * VOSK_WARM_UP_MB_PER_QUESTION
    return Estimate("asr", size_mb * VOSK_FACTOR + warm_mb,
                    f"vosk model {size_mb:.0f} MB on disk × {VOSK_FACTOR} + warm-up cache {warm_mb:.0f} MB "
                    f"({config.asr.warm_up_questions} questions, twice while a fresh recogniser is warmed)")


def endpointer_estimate(config: Config) -> Estimate:
    if config.endpointer.vad != "silero":
        vad = Estimate("endpointer", 0.0, "energy threshold (no model)")
    else:
        path = config.endpointer.vad_model
        size_mb = path.stat().st_size / MIB if path is not None and path.is_file() else 1.3  # the packaged Silero VAD
        vad = Estimate("endpointer", ORT_SESSION_MB + size_mb, f"Silero VAD {size_mb:.1f} MB + ONNX Runtime session {ORT_SESSION_MB:.0f} MB")
    if config.endpointer.end_of_turn != "smart-turn":
        return vad
    turn, on_tensorrt = engine_estimate(config.engines, config.endpointer.turn_engine)
    return Estimate("endpointer", vad.planned_mb + turn.planned_mb,
                    f"{vad.detail} + {config.endpointer.turn_engine} {turn.planned_mb:.0f} MB ({turn.detail})",
                    turn.note, on_tensorrt=on_tensorrt)


def renderer_estimate(config: Config) -> Estimate:
    render = config.render
    frame_mb = render.width * render.height * 3 / MIB
    planned = RENDER_FIXED_MB + RENDER_FRAMES * frame_mb
    detail = (f"{RENDER_FRAMES:.1f} frame buffers of {render.width}×{render.height}×3 ({frame_mb:.1f} MB each) + "
              f"OpenCV/Qt {RENDER_FIXED_MB:.0f} MB")
    return Estimate("renderer", planned, detail)


def read_manifest(engine_dir: Path):
    """The engine's manifest (``talkerd.engines.load_manifest``); ``ConfigError`` when missing or invalid."""
    from ..engines.manifest import load_manifest

    return load_manifest(engine_dir)


def _tensorrt_sidecars(engines_cfg: EnginesConfig, name: str, onnx_sha256: str) -> list:
    from ..engines.sidecar import engine_files, read_sidecar

    sidecars = [read_sidecar(path) for path in engine_files(engines_cfg.build_dir, name)]
    return [s for s in sidecars if s is not None and s.onnx_sha256 == onnx_sha256]


def engines_estimate(component: str, engines_cfg: EnginesConfig, names: list[str]) -> Estimate:
    """One component made of engines (the TTS's text and audio parts): (estimate, any on TensorRT)."""
    parts = [engine_estimate(engines_cfg, name) for name in dict.fromkeys(names)]  # one engine named twice loads once
    detail = " + ".join(f"{name} {e.planned_mb:.0f} MB ({e.detail})" for name, (e, _) in zip(dict.fromkeys(names), parts))
    note = "; ".join(e.note for e, _ in parts if e.note)
    return Estimate(component, sum(e.planned_mb for e, _ in parts), detail, note, on_tensorrt=any(t for _, t in parts))


def engine_estimate(engines_cfg: EnginesConfig, name: str) -> tuple[Estimate, bool]:
    """(estimate, runs on TensorRT) for the engine folder ``name``.

    ONNX Runtime: the manifest's measured ``memory_mb``. TensorRT (backend tensorrt, or auto with a
    built engine for this ONNX): the sidecar's serialized engine size (about the weights) plus the
    device memory its execution context needs. The planner cannot ask TensorRT which of several
    built engines matches this JetPack without loading it, so it takes the largest.
    """
    from ..engines import backend_for

    try:
        manifest = read_manifest(engines_cfg.dir / name)
    except ConfigError as exc:
        return Estimate(name, 0.0, "not counted", f"{name}: not counted: {exc.message}"), False
    backend = backend_for(engines_cfg, name)
    if backend != "onnxruntime":
        sidecars = _tensorrt_sidecars(engines_cfg, name, manifest.sha256)
        if sidecars:
            biggest = max(sidecars, key=lambda s: s.engine_bytes + s.device_memory_bytes)
            weights, device = biggest.engine_bytes / MIB, biggest.device_memory_bytes / MIB
            detail = f"TensorRT engine {weights:.0f} MB + device memory {device:.0f} MB"
            note = ""
            if backend == "auto":
                note = (f"{name}: a fallback to ONNX Runtime during a turn would add up to "
                        f"{manifest.memory_mb} MB")
            return Estimate(name, weights + device, detail, note), True
    return Estimate(name, float(manifest.memory_mb), "ONNX Runtime, from the manifest"), False


PRERENDER_SPEECH_RATE = 2.5
"""Words per second the voice speaks (joe-medium at length_scale 1: 2.4–2.7 on the default answers)."""
PRERENDER_SAMPLE_RATE = 48000
"""The highest output rate a speaker is opened at: the cache holds its audio at that rate (int16)."""


def speech_cache_estimate(config: Config) -> Estimate:
    """The fixed answers pre-rendered: their audio at the output rate and a mouth track per video
    frame, from their word count; never more than ``tts.prerender_mb``."""
    from ..answer.answerer import fixed_answers
    from ..mouth import MOUTH_CHANNELS

    emergencies = tuple(intent.answer for intent in config.safety.intents)
    texts = fixed_answers(config.persona, config.venue, emergencies, facts_as_written=True)
    seconds = sum(len(text.split()) for text in texts) / PRERENDER_SPEECH_RATE * config.tts.length_scale
    per_second = PRERENDER_SAMPLE_RATE * 2 + config.render.fps * len(MOUTH_CHANNELS) * 4  # int16 audio, float32 mouth
    planned = min(seconds * per_second / MIB, config.tts.prerender_mb)
    return Estimate("speech_cache", planned, f"{len(texts)} fixed answers, about {seconds:.0f} s of speech "
                    f"(at most tts.prerender_mb = {config.tts.prerender_mb:g})")


def knowledge_estimate(config: Config) -> Estimate:
    entries = len(config.venue.entries) + len(config.venue.facts)
    planned = KNOWLEDGE_FIXED_MB + KNOWLEDGE_MB_PER_ENTRY * entries
    detail = f"{entries} venue entries and facts indexed"
    if config.knowledge.semantic:  # the sentence-embedding engine is loaded with the knowledge
        engine, on_tensorrt = engine_estimate(config.engines, config.knowledge.embedding_engine)
        return Estimate("knowledge", planned + engine.planned_mb, f"{detail}; {engine.name}: {engine.detail}",
                        engine.note, on_tensorrt)
    return Estimate("knowledge", planned, detail)
