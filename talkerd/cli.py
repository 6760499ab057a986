"""The ``talkerd`` command: run, check-config, plan, bench.

Every failure a person can cause ends in one line on stderr and a documented exit code
(talkerd.errors.ExitCode), never a stack trace.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import ExitCode, TalkerError

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/talkerd/talkerd.toml"


def _run(args: argparse.Namespace) -> int:
    from .daemon import Daemon, RunOptions

    options = RunOptions(Path(args.config), input=args.input, display=args.display, output=args.output)
    return Daemon(options).run()


def _check_config(args: argparse.Namespace) -> int:
    from .answer.knowledge.lint import check_venue
    from .config import check_resources, load_config

    config = load_config(args.file)
    check_resources(config, source=args.file)
    warnings = check_venue(config)
    for warning in warnings:
        print(f"{args.file}: warning [{warning.code}]: {warning.message}")
    counted = f", {len(warnings)} warning{'s' if len(warnings) > 1 else ''} about the venue's knowledge" if warnings else ""
    print(f"{args.file}: OK{counted}")
    return ExitCode.OK


def _plan(args: argparse.Namespace) -> int:
    from .memory import plan_command

    return plan_command(args.config, args.json)


def _bench(args: argparse.Namespace) -> int:
    json_path = Path(args.json) if args.json else None
    if args.black_box:
        from .bench.blackbox import black_box_command

        return black_box_command(Path(args.config), args.rounds, json_path, baseline=not args.no_baseline,
                                 questions=args.questions, llm_turns=args.llm_turns)
    from .bench.latency import bench_command

    return bench_command(Path(args.config), args.turns, json_path)


def _soak(args: argparse.Namespace) -> int:
    from .bench.soak import soak_command

    devices = tuple(name.strip() for name in args.devices.split(",") if name.strip())
    return soak_command(Path(args.config), args.turns, args.seed, args.outage_every, Path(args.json) if args.json else None, devices,
                        args.visitor_turns)


def _input_choice(value: str):
    """``--input``, parsed once here: the daemon gets a typed ``InputChoice``."""
    from .listen.sources import InputChoice

    try:
        return InputChoice.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _display_choice(value: str):
    """``--display``, parsed once here: the daemon gets a typed ``DisplayChoice``."""
    from .render.sinks import DisplayChoice, DisplayModeError

    try:
        return DisplayChoice.parse(value)
    except DisplayModeError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _output_mode(value: str):
    from .speak.playout import OutputMode

    try:
        return OutputMode(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected auto, speaker or none") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="talkerd", description="Offline talking-avatar kiosk daemon.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default %(default)s)")
    run.add_argument("--input", default="auto", type=_input_choice, help="mic | wav:PATH | stdin | none | auto (default)")
    run.add_argument("--display", default="auto", type=_display_choice, help="auto | window | video:PATH | none")
    run.add_argument("--output", default="auto", type=_output_mode, help="auto | speaker | none (audio output)")
    run.set_defaults(handler=_run)

    check = commands.add_parser("check-config", help="validate a config file and the files it names")
    check.add_argument("file")
    check.set_defaults(handler=_check_config)

    plan = commands.add_parser("plan", help="print the memory plan without loading anything")
    plan.add_argument("--config", default=DEFAULT_CONFIG)
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(handler=_plan)

    bench = commands.add_parser("bench", help="time scripted turns through the real pipeline")
    bench.add_argument("--config", default=DEFAULT_CONFIG)
    bench.add_argument("--turns", type=int, default=5)
    bench.add_argument("--black-box", action="store_true",
                       help="time the daemon from outside: spoken into a private microphone, heard at its speaker")
    bench.add_argument("--rounds", type=int, default=3, help="--black-box: times each question is asked (default %(default)s)")
    bench.add_argument("--questions", type=int, help="--black-box: only the first N questions and N paused ones")
    bench.add_argument("--no-baseline", action="store_true", help="--black-box: skip the sequential baseline")
    bench.add_argument("--llm-turns", type=int, help="--black-box: only N consecutive LLM turns on the daemon (slowdown over a conversation)")
    bench.add_argument("--json", help="also write the figures to this file")
    bench.set_defaults(handler=_bench)

    soak = commands.add_parser("soak", help="many spoken turns through the real daemon while its devices come and go")
    soak.add_argument("--config", default=DEFAULT_CONFIG)
    soak.add_argument("--turns", type=int, default=500)
    soak.add_argument("--seed", type=int, default=1, help="for the moments the devices are unplugged")
    soak.add_argument("--outage-every", type=float, default=45.0, help="mean seconds between device outages (default %(default)s)")
    soak.add_argument("--devices", default="microphone,speaker", help="which devices come and go (default %(default)s)")
    soak.add_argument("--visitor-turns", type=int, default=10,
                      help="turns between two quiet spells, as between visitors (0: none; default %(default)s)")
    soak.add_argument("--json", help="also write the figures to this file")
    soak.set_defaults(handler=_soak)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .logging_setup import setup_logging

    setup_logging(args.log_level)
    try:
        return args.handler(args)
    except TalkerError as exc:
        print(f"talkerd: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
