"""Engine benchmark: load time, warm-up, run time at the profile's shapes and memory, per engine and backend.

    python -m talkerd.engines.bench [--config FILE] [--engine NAME ...] [--backend B] [--runs N] [--json]

Prints one table row per engine (and per shape); nothing is asserted — the figures are for people.
Exit codes: 0 ok, 2 usage, 69 an engine cannot be opened, 78 the config is invalid.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import List, Optional, Sequence, Tuple

from ..errors import ExitCode, TalkerError
from .base import Engine, Feeds


def time_runs(engine: Engine, feeds: Feeds, runs: int) -> Tuple[float, float]:
    """(median, p95) milliseconds of ``engine.run(feeds)``, after one untimed run."""
    engine.run(feeds)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        engine.run(feeds)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def bench_engine(engines_cfg, name: str, backend: Optional[str], runs: int) -> List[dict]:
    """Rows of figures for one engine: one per distinct profile shape (min, opt, max)."""
    from . import open_engine

    started = time.perf_counter()
    engine = open_engine(engines_cfg, name, backend)
    load_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    engine.warm_up()
    warm_ms = (time.perf_counter() - started) * 1000
    rows, seen = [], set()
    try:
        for which in ("min", "opt", "max"):
            feeds = engine.manifest.zero_feeds(which)  # zeros: timing depends on shapes, not values
            key = tuple(tuple(a.shape) for a in feeds.values())
            if key in seen:
                continue
            seen.add(key)
            median, p95 = time_runs(engine, feeds, runs)
            rows.append({"engine": name, "backend": engine.backend, "shape": which,
                         "inputs": {k: list(v.shape) for k, v in feeds.items()}, "load_ms": round(load_ms, 1),
                         "warm_up_ms": round(warm_ms, 1), "median_ms": round(median, 2), "p95_ms": round(p95, 2),
                         "memory_mb": round(engine.memory_bytes() / (1 << 20), 1)})
    finally:
        engine.close()
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m talkerd.engines.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/default.toml")
    parser.add_argument("--engine", action="append", default=[], help="only this engine (default: all)")
    parser.add_argument("--backend", choices=["auto", "tensorrt", "onnxruntime"], help="default: the config's")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    if args.runs < 1:
        print("bench: --runs must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    from ..config import load_config

    try:
        engines_cfg = load_config(args.config).engines
        names = args.engine or sorted(p.parent.name for p in engines_cfg.dir.glob("*/manifest.toml"))
        rows = [row for name in names for row in bench_engine(engines_cfg, name, args.backend, args.runs)]
    except TalkerError as exc:
        print(f"bench: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    print(f"{'engine':<17} {'backend':<12} {'shape':<5} {'load ms':>8} {'warm ms':>8} {'median ms':>10} "
          f"{'p95 ms':>8} {'MiB':>6}  inputs")
    for r in rows:
        inputs = " ".join(f"{k}{v}" for k, v in r["inputs"].items()).replace(" ", "")
        print(f"{r['engine']:<17} {r['backend']:<12} {r['shape']:<5} {r['load_ms']:>8.1f} {r['warm_up_ms']:>8.1f} "
              f"{r['median_ms']:>10.2f} {r['p95_ms']:>8.2f} {r['memory_mb']:>6.1f}  {inputs}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
