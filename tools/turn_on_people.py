#!/usr/bin/env python3
"""The end-of-turn model's verdicts on people: real recordings, points labelled complete or unfinished.

    tools/turn_on_people.py configs/default.toml [--set tests/data/people_turns.toml]
                            [--recordings var/recordings] [--json PATH]

Asks the config's end-of-turn engine (``endpointer.turn_engine``) at every labelled point of the set,
heard as at a short pause (the utterance up to the point, then ``endpointer.pause_ms`` of silence), and
prints per threshold how many complete utterance ends it would have ended and how many unfinished
points it would have cut off, for all points and per recording, with the ranking (0.5 chance, 1.0
perfect) and the machine. The recordings come from setup (var/recordings/); a set of the kiosk's own
recordings, written in the same form, is measured with ``--set`` and ``--recordings``.
Exit codes: 0 done; 2 bad command line; 69 the engine or a recording cannot be loaded; 78 bad config or
a bad set (not of its form, or a point past the end of its recording).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.bench.latency import machine_description  # noqa: E402
from talkerd.bench.people_turns import check_lengths, load_cuts, read_recording, render, report, verdicts  # noqa: E402
from talkerd.config import load_config  # noqa: E402
from talkerd.errors import ExitCode, TalkerError  # noqa: E402
from talkerd.listen.end_of_turn import SmartTurn  # noqa: E402

RECORDINGS = ROOT / "var" / "recordings"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--set", type=Path, default=ROOT / "tests" / "data" / "people_turns.toml")
    parser.add_argument("--recordings", type=Path, default=RECORDINGS, help="the folder of the set's recordings")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        files, cuts = load_cuts(args.set)
        detector = SmartTurn.load(config.engines, config.endpointer.turn_engine)
    except TalkerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    try:
        recordings = {name: read_recording(args.recordings / file) for name, file in files.items()}
    except ValueError as exc:
        print(f"error: {exc} (the shipped set's recordings come from scripts/setup.sh)", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    try:
        check_lengths(recordings, cuts)
    except ValueError as exc:
        print(f"error: {args.set}: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    pause_s = config.endpointer.pause_ms / 1000
    found = verdicts(detector, recordings, cuts, pause_s)
    figures = {"machine": machine_description(), "engine": config.endpointer.turn_engine,
               "pause_ms": config.endpointer.pause_ms, **report(found)}
    print(f"machine: {figures['machine']}")
    print(f"engine: {figures['engine']}, asked after {figures['pause_ms']} ms of silence at each point")
    print(render(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
