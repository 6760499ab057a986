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

from ..config import Config, load_config
from ..errors import ExitCode, TalkerError
from ..registry import COMPONENTS
from .meter import MemoryMeter
from .plan import plan_memory

log = logging.getLogger(__name__)

def _import_libraries() -> None:
    """Everything the daemon imports, so that later figures are the components' own memory."""
    import cv2  # noqa: F401
    import llama_cpp  # noqa: F401
    import onnxruntime  # noqa: F401
    import vosk  # noqa: F401

    from .. import components, daemon, pipeline  # noqa: F401


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
    for component in COMPONENTS:
        name = component.name
        if name not in planned or (only is not None and name not in only):
            continue
        if name == "renderer" and not probe_display().usable:
            skipped[name] = "no usable display"
            continue
        try:
            with meter.measure(name):
                part = component.load(config)
                component.peak(config, part)
                keep.append(part)
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
