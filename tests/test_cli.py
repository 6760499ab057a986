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
        (["--display", "video:", "--input", "none"], "needs a file path after 'video:'"),
        (["--output", "loud"], "'loud': expected auto, speaker or none"),
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


def test_input_is_parsed_once_into_a_typed_choice(tmp_path):
    from talkerd.listen.sources import InputChoice

    wav = tmp_path / "question.wav"
    wav.write_bytes(b"RIFF")
    assert InputChoice.parse("auto") == InputChoice("mic", typed="auto")
    assert InputChoice.parse("stdin") == InputChoice("none", typed="always") and not InputChoice.parse("stdin").has_audio
    assert InputChoice.parse(f"wav:{wav}") == InputChoice("wav", wav=wav)
    for bad in ("speaker", f"wav:{tmp_path / 'missing.wav'}"):
        with pytest.raises(ValueError):
            InputChoice.parse(bad)


def test_display_and_output_are_parsed_once_into_typed_choices(tmp_path):
    from talkerd.cli import build_parser
    from talkerd.render.sinks import DisplayChoice, DisplayMode
    from talkerd.speak.playout import OutputMode

    args = build_parser().parse_args(["run", "--display", f"video:{tmp_path}/a.mp4", "--output", "none"])
    assert args.display == DisplayChoice(DisplayMode.VIDEO, tmp_path / "a.mp4") and args.output is OutputMode.NONE
    assert str(args.display) == f"video:{tmp_path}/a.mp4"
    defaults = build_parser().parse_args(["run"])
    assert defaults.display == DisplayChoice(DisplayMode.AUTO) and defaults.output is OutputMode.AUTO
