"""How soon the streaming TTS starts speaking, against the single Piper model on ONNX Runtime.

``python -m talkerd.bench.tts_chunks [--config FILE] [--repeats N] [--json]`` prints, for a 40-word
sentence: the time to the first audio chunk of the split engines, the time the whole single model
takes for the same phoneme ids, their ratio, the split engines' time for the whole sentence, and the
machine. Runs alternate between the two so load from other processes hits both alike; medians are
reported.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH_TEXT = (
    "Welcome to Riverside Books, where you will find thousands of new and second hand titles, "
    "a quiet reading room upstairs, a children's corner with weekly story time, and a small cafe "
    "that serves fresh coffee, tea and cakes every day until six in the evening."
)
"""45 words, about 13 seconds of speech."""


def machine() -> dict:
    """CPU model, core count and the software that ran the benchmark."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__}


def _full_model(tts, threads: int):
    import onnxruntime as ort

    path = Path(str(tts.cfg.voice_config).removesuffix(".json"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_first_chunk_ratio(tts, text: str = BENCH_TEXT, *, repeats: int = 3, threads: int = 2) -> dict:
    """Time to the first chunk of ``tts.synthesize(text)`` ÷ time of the single full model on the
    same phoneme ids (noise scales as configured). Returns the medians in milliseconds and the ratio."""
    from ..speak.phonemes import Phonemizer

    sentences = Phonemizer(tts.voice.espeak_voice, tts.voice.id_map).sentences(text)
    if not sentences:
        raise ValueError("the benchmark text has nothing to speak")
    full = _full_model(tts, threads)
    scales = np.array([tts.cfg.noise_scale, tts.cfg.length_scale, tts.cfg.noise_w], np.float32)
    feeds = [{"input": np.array([s.ids], np.int64), "input_lengths": np.array([len(s.ids)], np.int64), "scales": scales}
             for s in sentences]
    for feed in feeds:  # warm both paths
        full.run(None, feed)
    for _ in tts.synthesize(text):
        pass
    first, streamed, whole, chunks, audio_s = [], [], [], 0, 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        chunks, samples = 0, 0
        for chunk in tts.synthesize(text):
            if chunks == 0:
                first.append(time.perf_counter() - started)
            chunks += 1
            samples += len(chunk.audio)
        streamed.append(time.perf_counter() - started)
        audio_s = samples / tts.sample_rate
        started = time.perf_counter()
        for feed in feeds:
            full.run(None, feed)
        whole.append(time.perf_counter() - started)
    first_ms, whole_ms, streamed_ms = (statistics.median(v) * 1000 for v in (first, whole, streamed))
    return {
        "words": len(text.split()),
        "audio_s": round(audio_s, 2),
        "chunks": chunks,
        "first_chunk_ms": round(first_ms, 1),
        "whole_model_ms": round(whole_ms, 1),
        "first_chunk_ratio": round(first_ms / whole_ms, 3),
        "streamed_total_ms": round(streamed_ms, 1),
        "streamed_total_ratio": round(streamed_ms / whole_ms, 3),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    from ..config import load_config
    from ..errors import TalkerError
    from ..speak.tts import PiperTts

    parser = argparse.ArgumentParser(prog="python -m talkerd.bench.tts_chunks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/default.toml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        tts = PiperTts.load(config.tts, config.engines)
        tts.warm_up()
        result = measure_first_chunk_ratio(tts, repeats=args.repeats, threads=config.engines.cpu_threads)
    except TalkerError as exc:
        print(f"bench_tts: {exc.message}", file=sys.stderr)
        return exc.exit_code
    result["machine"] = machine()
    result["window_frames"] = tts.window
    result["overlap_frames"] = tts.overlap
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['machine']}, Python {m['python']}, ONNX Runtime {m['onnxruntime']}")
    print(f"text: {result['words']} words, {result['audio_s']} s of speech, {result['chunks']} chunks "
          f"(windows of {tts.window} frames, {tts.overlap} frames overlap), median of {result['repeats']}")
    print(f"first chunk (split engines):     {result['first_chunk_ms']:8.1f} ms")
    print(f"whole sentence (single model):   {result['whole_model_ms']:8.1f} ms")
    print(f"first chunk / whole:             {result['first_chunk_ratio']:8.3f}")
    print(f"all chunks (split engines):      {result['streamed_total_ms']:8.1f} ms  ({result['streamed_total_ratio']:.2f} x whole)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
