"""Load every real component once, measure what it took, and print it against the plan.

    python -m talkerd.memory.probe --config configs/default.toml [--json] [--only llm,asr]

Run it in a fresh process: the figures are growth of this process's resident set. Each component is
driven to its working peak, since that is what the budget must hold: the renderer draws a second of
frames into a window (when a display is usable), the ASR decodes ten seconds of audio, the LLM fills
its whole context, the TTS speaks a long sentence. Exit 0 when every measured component is within
``--tolerance`` percent of its plan, 1 when not, 78 for a config error.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable

import numpy as np

from ..config import Config, load_config
from ..errors import ExitCode, TalkerError
from .meter import MemoryMeter
from .plan import plan_memory

log = logging.getLogger(__name__)

PEAK_SENTENCE = " and ".join(
    ["the shop sells new books and old maps"] * 24
) + "."
"""One sentence of about 900 phoneme ids, near the text engine's largest input (1024): its peak."""

LONG_SENTENCE = (
    "Welcome to Riverside Books, where you will find new fiction, travel guides, maps and a children's "
    "corner downstairs, while the café upstairs serves coffee, soup and cake until half an hour before we close."
)


def _import_libraries() -> None:
    """Everything the daemon imports, so that later figures are the components' own memory."""
    import cv2  # noqa: F401
    import llama_cpp  # noqa: F401
    import onnxruntime  # noqa: F401
    import vosk  # noqa: F401

    from .. import components, daemon, pipeline  # noqa: F401


def _renderer(config: Config, keep: list) -> None:
    from ..render import RenderLoop, RestSource, make_avatar, open_sink

    avatar = make_avatar(config.render)
    sink, _ = open_sink("window", config.render)
    RenderLoop(avatar, sink, RestSource(), config.render.fps, pace="frames", max_frames=config.render.fps).run(threading.Event())
    keep += [avatar, sink]


def _endpointer(config: Config, keep: list) -> None:
    from ..listen.endpointer import make_detector

    detector = make_detector(config.endpointer)
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    for start in range(0, len(noise), 320):
        detector.speech_probability(noise[start : start + 320])
    keep.append(detector)


def _asr(config: Config, keep: list) -> None:
    from ..listen.asr import VoskAsr

    asr = VoskAsr.load(config.asr, config.audio.capture_rate)
    asr.start()
    rng = np.random.default_rng(0)
    for _ in range(10):
        asr.accept((rng.standard_normal(config.audio.capture_rate) * 3000).astype(np.int16).tobytes())
    asr.finish()
    keep.append(asr)


def _knowledge(config: Config, keep: list) -> None:
    from ..components import _load_knowledge

    keep.append(_load_knowledge(config))


def _llm(config: Config, keep: list) -> None:
    """The model as the dialogue loads it, with its context filled to the end (the worst case)."""
    import llama_cpp

    llm = llama_cpp.Llama(str(config.llm.model), n_ctx=config.llm.n_ctx, n_threads=config.llm.n_threads,
                          n_gpu_layers=config.llm.n_gpu_layers, verbose=False)
    text = (LONG_SENTENCE + " ").encode() * (config.llm.n_ctx // 20 + 1)
    tokens = llm.tokenize(text, add_bos=False)[: config.llm.n_ctx - 8]
    llm.eval(tokens)
    keep.append(llm)


def _tts(config: Config, keep: list) -> None:
    from ..speak.tts import PiperTts

    tts = PiperTts.load(config.tts, config.engines)
    tts.warm_up()
    for _ in tts.synthesize(PEAK_SENTENCE):
        pass
    keep.append(tts)


def _face(config: Config, keep: list) -> None:
    from ..components import _load_face

    keep.append(_load_face(config))


LOADERS: dict[str, Callable[[Config, list], None]] = {
    "renderer": _renderer, "endpointer": _endpointer, "asr": _asr, "knowledge": _knowledge,
    "llm": _llm, "tts": _tts, "face": _face,
}
"""Component → how to load it and drive it to its peak, in the daemon's loading order."""


def probe(config: Config, only: set[str] | None = None) -> tuple[list[dict], dict[str, str]]:
    """Measure each planned component; (report rows, component → why it was skipped)."""
    from ..render.xprobe import probe_display

    plan = plan_memory(config)
    meter = MemoryMeter()
    _import_libraries()
    meter.record_total("runtime")
    skipped: dict[str, str] = {}
    keep: list = []
    planned = {c.name for c in plan.components if c.detail != "not counted"}
    for name, loader in LOADERS.items():
        if name not in planned or (only is not None and name not in only):
            continue
        if name == "renderer" and not probe_display().usable:
            skipped[name] = "no usable display"
            continue
        try:
            with meter.measure(name):
                loader(config, keep)
        except TalkerError as exc:
            skipped[name] = exc.message
    rows = meter.report(plan)
    if only is not None:
        rows = [r for r in rows if r["name"] in only or r["name"] == "runtime"]  # a partial process is no total
    return rows, skipped


def _print_table(rows: list[dict], skipped: dict[str, str]) -> None:
    print(f"{'component':<11} {'planned MB':>10} {'measured MB':>11} {'error':>7}")
    for row in rows:
        planned = "" if row["planned_mb"] is None else f"{row['planned_mb']:.0f}"
        actual = "" if row["actual_mb"] is None else f"{row['actual_mb']:.0f}"
        error = "" if row["error_pct"] is None else f"{row['error_pct']:+.0f}%"
        print(f"{row['name']:<11} {planned:>10} {actual:>11} {error:>7}")
    for name, why in skipped.items():
        print(f"{name}: not measured: {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m talkerd.memory.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", help="comma-separated components to measure (runtime is always measured)")
    parser.add_argument("--tolerance", type=float, default=25.0, help="allowed error in percent (default 25)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        config = load_config(args.config)
        rows, skipped = probe(config, set(args.only.split(",")) if args.only else None)
    except TalkerError as exc:
        print(f"probe: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({"rows": rows, "skipped": skipped}, indent=2))
    else:
        _print_table(rows, skipped)
    off = [r["name"] for r in rows if r["name"] != "process" and _off(r, args.tolerance)]
    return ExitCode.FAILURE if off else ExitCode.OK


SMALL_MB = 20.0
"""Below this, percentages mean nothing (allocator noise alone is tens of percent): within
``SMALL_TOLERANCE_MB`` is right."""
SMALL_TOLERANCE_MB = 10.0


def _off(row: dict, tolerance_pct: float) -> bool:
    planned, actual = row["planned_mb"], row["actual_mb"]
    if planned is None or actual is None:
        return False
    if max(planned, actual) < SMALL_MB:
        return abs(planned - actual) > SMALL_TOLERANCE_MB
    return abs(planned - actual) > tolerance_pct / 100 * actual


if __name__ == "__main__":
    sys.exit(main())
