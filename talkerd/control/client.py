"""``talkerctl``: the command-line client of the daemon's control socket.

Exit codes: 0 ok, 1 the daemon said no (or refused access), 2 usage (bad arguments, unreadable
``--config``, a file to play that does not exist), 3 no daemon on the socket, or it does not answer.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .protocol import ControlClient, DaemonError, default_socket_path, resolve_socket_path
from .text_output import event_line, render
from ..errors import ExitCode, TalkerError

DEFAULT_TIMEOUT_S = 60.0
SOCKET_ENV = "TALKERD_SOCKET"


class UsageError(TalkerError):
    """A bad command line (the message says which argument and why)."""

    code = "usage"
    exit_code = ExitCode.USAGE


def _text(words: list[str]) -> str:
    text = " ".join(words).strip()
    if not text:
        raise UsageError("the text must not be empty")
    return text


def _no_params(args: argparse.Namespace) -> dict:
    return {}


def _params_text(args: argparse.Namespace) -> dict:
    return {"text": _text(args.text)}


def _params_play(args: argparse.Namespace) -> dict:
    path = Path(args.file).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{args.file}: no such file")
    # The daemon opens the file itself, so it gets an absolute path it can resolve on its side.
    return {"path": str(path)}


def _params_call(args: argparse.Namespace) -> dict:
    if args.params is None:
        return {}
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        raise UsageError(f"params are not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(params, dict):
        raise UsageError('params must be a JSON object, e.g. \'{"text": "hello"}\'')
    return params


# command → (method it calls, how it builds the params, help)
COMMANDS = {
    "status": ("status", _no_params, "show the daemon's state, components, turns and latencies"),
    "ask": ("ask", _params_text, "ask a question as if typed; prints the answer once it has been spoken"),
    "say": ("say", _params_text, "speak the given text as it is"),
    "play": ("play", _params_play, "play a WAV file (the daemon's user must be able to read it)"),
    "reload": ("reload", _no_params, "re-read the venue knowledge and persona from the config (like SIGHUP)"),
    "mute": ("mute", _no_params, "stop listening to the microphone (it stays open; typed questions still work)"),
    "unmute": ("unmute", _no_params, "listen to the microphone again"),
    "cancel": ("cancel", _no_params, "stop the answer being spoken now"),
    "end-conversation": ("conversation.end", _no_params,
                         "end the conversation with the visitor in front of the kiosk: its history is forgotten"),
    "engines": ("engines", _no_params, "show the loaded engines (backend, state, memory) and the OTA release: active, pending"),
    "watch": ("watch", _no_params, "follow what happens, live: transcripts, routes and answers, states, errors (Ctrl-C stops)"),
    "diagnose": ("diagnose", _no_params, "write one .tar.gz for a support ticket: versions, file hashes, config, status, journal, screenshot"),
    "memory": ("memory", _no_params, "show the memory budget, the plan and what each component uses"),
    "call": (None, _params_call, "call any control method with JSON params"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkerctl",
        description="Control a running talkerd through its control socket.",
        epilog="Exit codes: 0 ok, 1 the daemon said no, 2 usage, 3 no daemon listening or not answering.",
    )
    parser.add_argument("--socket", metavar="PATH", help=f"control socket (default: the --config's, else ${SOCKET_ENV}, else {default_socket_path()})")
    parser.add_argument("--config", metavar="FILE", help="take the socket path from this talkerd config file")
    parser.add_argument("--json", action="store_true", help="print the raw result as JSON (for scripts)")
    parser.add_argument("--timeout", metavar="SECONDS", type=_positive_float, default=DEFAULT_TIMEOUT_S, help=f"how long to wait for the reply (default {DEFAULT_TIMEOUT_S:g}; answers can take seconds)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, _, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        if name in ("ask", "say"):
            sub.add_argument("text", nargs="+", help="the text (several words are joined with spaces)")
        elif name == "play":
            sub.add_argument("file", metavar="FILE.wav")
        elif name == "diagnose":
            sub.add_argument("--output", metavar="FILE.tar.gz", help="where to write it (default: talkerd-diagnose-HOST-TIME.tar.gz here)")
        elif name == "call":
            sub.add_argument("method")
            sub.add_argument("params", nargs="?", metavar="JSON", help="params as a JSON object (default {})")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def socket_path(args: argparse.Namespace) -> Path:
    """--socket, else the --config file's control.socket, else $TALKERD_SOCKET, else the default."""
    if args.socket:
        return Path(args.socket)
    if args.config:
        from ..config import load_config  # only here: pydantic costs a moment at start-up

        try:
            return resolve_socket_path(load_config(args.config).control.socket)
        except TalkerError as exc:
            raise UsageError(exc.message) from None
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    return default_socket_path()


def watch(args: argparse.Namespace) -> int:
    """Print each event as one line until the daemon stops or Ctrl-C."""
    with ControlClient(socket_path(args), timeout_s=args.timeout) as client:
        try:
            for event in client.watch():
                print(json.dumps(event, ensure_ascii=False) if args.json else event_line(event), flush=True)
        except KeyboardInterrupt:
            return ExitCode.OK
    return ExitCode.OK


def diagnose(args: argparse.Namespace) -> str:
    """Ask the daemon for its part, add the journal, write the archive; returns where."""
    import socket as sockets
    import time

    from .diagnose import write_archive

    output = Path(args.output) if args.output else Path(
        f"talkerd-diagnose-{sockets.gethostname()}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    with ControlClient(socket_path(args), timeout_s=args.timeout) as client:
        result = client.call("diagnose")
    try:
        return f"wrote {write_archive(result, output)}"
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> object:
    method, make_params, _ = COMMANDS[args.command]
    params = make_params(args)
    path = socket_path(args)
    with ControlClient(path, timeout_s=args.timeout) as client:
        return client.call(method or args.method, params)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage message already
        return int(exc.code or 0)
    try:
        if args.command == "watch":
            return watch(args)
        result = diagnose(args) if args.command == "diagnose" else run(args)
    except TalkerError as exc:
        print(f"talkerctl: {_describe(exc)}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(render(result))
    return ExitCode.OK


def _describe(exc: TalkerError) -> str:
    if isinstance(exc, DaemonError):
        return f"error from talkerd: {exc.message} [{exc.code}]"
    return exc.message


if __name__ == "__main__":
    sys.exit(main())
