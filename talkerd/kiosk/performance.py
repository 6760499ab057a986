"""Put a Jetson in its full-performance mode: ``nvpmodel -m 0``, then ``jetson_clocks``.

    python -m talkerd.kiosk.performance [--mode 0]

Run once per boot by ``talkerd-performance.service`` before talkerd (neither setting survives a
reboot on its own: jetson_clocks always resets, and nvpmodel may be changed by someone else). On a
machine without the tools (a development machine, another board) it says so and succeeds: there is
nothing to do. A tool that exists and fails makes the unit fail (visible in ``systemctl --failed``),
though talkerd starts anyway (the unit is wanted, not required).

Exit codes: 0 done or nothing to do; 1 a tool failed; 2 usage.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from ..errors import ExitCode

SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""Where JetPack installs the tools; searched after ``$PATH``."""


def steps(mode: int) -> list[list[str]]:
    """The commands, in order: the power model first (jetson_clocks maximises within it)."""
    return [["nvpmodel", "-m", str(mode)], ["jetson_clocks"]]


def run_steps(commands: Sequence[Sequence[str]], search_path: str) -> tuple[list[str], list[str], list[str]]:
    """Run each command found on ``search_path``; (done, absent, failed) as readable lines."""
    done, absent, failed = [], [], []
    for command in commands:
        program = shutil.which(command[0], path=search_path)
        line = " ".join(command)
        if program is None:
            absent.append(command[0])
            continue
        result = subprocess.run([program, *command[1:]], capture_output=True, text=True)
        if result.returncode == 0:
            done.append(line)
        else:
            detail = (result.stderr or result.stdout).strip().splitlines()
            failed.append(f"{line}: exit {result.returncode}" + (f": {detail[-1]}" if detail else ""))
    return done, absent, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkerd-performance", description="Full-performance mode on a Jetson.")
    parser.add_argument("--mode", type=int, default=0, help="nvpmodel power mode (default 0, MAXN)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    search_path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), SEARCH_PATH) if p)
    done, absent, failed = run_steps(steps(args.mode), search_path)
    for line in done:
        print(f"done: {line}")
    if absent:
        print(f"not a Jetson (or JetPack tools missing): {', '.join(absent)} not found; nothing to do for them")
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return ExitCode.FAILURE if failed else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
