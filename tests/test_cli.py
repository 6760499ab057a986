"""`talkerd run` refuses bad command lines at once, before loading anything, with exit code 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import DEFAULT_CONFIG, ROOT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "bogus"], "expected mic, wav:PATH, stdin, none or auto"),
        (["--input", "wav:/no/such.wav"], "no such WAV file: /no/such.wav"),
        (["--display", "bogus", "--input", "none"], "--display 'bogus'"),
        (["--output", "loud"], "invalid choice"),
    ],
)
def test_bad_run_arguments_exit_2(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "talkerd", "run", "--config", str(DEFAULT_CONFIG), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={"PATH": "/usr/bin:/bin", "DISPLAY": ""},
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
