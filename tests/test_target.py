"""The target checks: talkerd runs on Python 3.10, and its dependencies exist for aarch64 (tools/check_target.py)."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import check_target  # noqa: E402


def test_talkerd_and_its_kiosk_tools_run_on_python_310():
    assert check_target.check_python([ROOT / p for p in check_target.KIOSK_CODE]) == []


@pytest.mark.parametrize("source, flagged", [
    ("import tomllib\n", "tomllib (3.11) imported without a tomli fallback"),
    ("from typing import Self\n", "vermin"),
    ("from enum import StrEnum\n", "vermin"),
    ("import tomllib as toml_reader\n", "tomllib (3.11)"),
    ("try:\n    import tomllib\nexcept ImportError:\n    import tomli as tomllib\n", None),
    ("def f(x: int | None) -> None:\n    match x:\n        case 1:\n            pass\n", None),
])
def test_python_check_catches_311_features(tmp_path, source, flagged):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(source)
    problems = check_target.check_python(package)
    if flagged is None:
        assert problems == []
    else:
        assert problems and flagged in "\n".join(problems)


def _index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


needs_index = pytest.mark.skipif(not _index_reachable(), reason="pypi.org is not reachable")


@needs_index
def test_every_runtime_dependency_has_an_aarch64_wheel_or_a_documented_source():
    requirements = check_target.runtime_requirements(ROOT / "pyproject.toml")
    names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requirements}
    assert {"onnxruntime", "numpy", "pydantic", "vosk", "llama-cpp-python"} <= names
    rows = check_target.check_wheels(requirements + sorted(check_target.NATIVE_TRANSITIVE))
    missing = [row for row in rows if row["status"] == "missing"]
    assert missing == []
    for row in rows:
        if row["status"] == "wheel":
            assert "aarch64" in row["detail"] or row["detail"].endswith("-none-any.whl"), row
            assert "cp310" in row["detail"] or "abi3" in row["detail"] or "py3" in row["detail"], row
    assert {row["name"] for row in rows if row["status"] == "exception"} == {
        "llama-cpp-python", "pyaudio", "systemd-python"}


@needs_index
def test_a_dependency_without_aarch64_wheel_is_reported():
    rows = check_target.check_wheels(["llama-cpp-python>=0.3"], exceptions={})
    assert rows[0]["status"] == "missing" and "llama-cpp-python" in rows[0]["detail"]


def test_cli_python_only_exit_codes():
    ok = subprocess.run([sys.executable, str(ROOT / "tools" / "check_target.py"), "--skip-wheels"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "Python 3.10: ok" in ok.stdout
    usage = subprocess.run([sys.executable, str(ROOT / "tools" / "check_target.py"), "--nope"],
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "unrecognized arguments" in usage.stderr
