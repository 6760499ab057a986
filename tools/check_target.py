#!/usr/bin/env python3
"""Check that talkerd can run on the kiosk: Python 3.10 on aarch64 (JetPack 6, Ubuntu 22.04, glibc 2.35).

1. Python 3.10: ``vermin -t=3.10- --no-tips --violations talkerd`` and the tools that run on the
   kiosk (``KIOSK_CODE``). ``tomllib`` (3.11) is excluded from vermin, which cannot see a try/except
   fallback, and checked here instead: every ``import tomllib`` must sit in a ``try`` whose handler
   imports ``tomli``.
2. aarch64 wheels: every runtime dependency in pyproject.toml (``dependencies`` and the ``systemd``
   extra), and the native packages they pull in, must have a CPython 3.10 wheel for manylinux aarch64
   (any glibc up to 2.35) on the package index, unless the exceptions table below says how a Jetson
   gets it. pip resolves each with ``--dry-run --report`` (the same choice ``pip download`` makes,
   without fetching the files) and ``--no-deps``.

Usage: check_target.py [--skip-python] [--skip-wheels] [--json]
Exit codes: 0 all met, 1 a requirement is not met (each is listed), 2 usage.
"""
from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent

try:  # Python 3.11+
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

TARGET_PYTHON = "3.10"
GLIBC_MINOR = 35  # Ubuntu 22.04 (JetPack 6)
PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(17, GLIBC_MINOR + 1)]
"""Every wheel platform tag a JetPack 6 system accepts (pip does not expand manylinux_2_35 downwards)."""

EXCEPTIONS: Dict[str, str] = {
    "llama-cpp-python": "no wheels on PyPI: source build on the Jetson with CUDA "
                        "(CMAKE_ARGS=\"-DGGML_CUDA=on\" pip install llama-cpp-python; needs cmake and JetPack's CUDA)",
    "pyaudio": "source build: apt install portaudio19-dev, then pip builds it",
    "systemd-python": "apt install python3-systemd (the venv uses --system-site-packages)",
    "tensorrt": "JetPack apt: python3-libnvinfer (the venv uses --system-site-packages)",
    "pycuda": "no aarch64 wheel: pip builds it against JetPack's CUDA toolkit (apt cuda-toolkit from JetPack)",
}
"""Runtime dependencies a Jetson does not get as an aarch64 wheel from PyPI, and how it gets them."""

NATIVE_TRANSITIVE: Dict[str, str] = {
    "pydantic-core": "pydantic",
    "cffi": "vosk",
}
"""Compiled packages that runtime dependencies pull in, checked as well (dependency → who needs it)."""

PIP_MARKERS = {"python_version": TARGET_PYTHON, "python_full_version": TARGET_PYTHON + ".12",
               "platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux",
               "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
               "extra": ""}


# --- Python 3.10 ---------------------------------------------------------------------------------------

KIOSK_CODE = ["talkerd", "tools/jetson-acceptance", "tools/check_target.py", "tools/prepare_engines.py",
              "tools/export_piper_split.py", "tools/provision_models.py", "tools/install-kiosk"]
"""What runs on the kiosk: the package and the tools that set it up and accept it (relative to the repository)."""


def vermin_command(paths: List[Path]) -> List[str]:
    exe = Path(sys.executable).parent / "vermin"
    vermin = str(exe) if exe.exists() else (shutil.which("vermin") or "vermin")
    return [vermin, f"-t={TARGET_PYTHON}-", "--no-tips", "--violations", "--exclude", "tomllib", *map(str, paths)]


def _imports_tomllib(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Import) and any(a.name == "tomllib" for a in n.names)
               or isinstance(n, ast.ImportFrom) and n.module == "tomllib" for n in ast.walk(node))


def unguarded_tomllib(path: Path) -> List[int]:
    """Lines importing tomllib outside a ``try`` whose ImportError handler imports tomli."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_imports_tomllib(s) for s in node.body):
            fallback = any(any(isinstance(n, (ast.Import, ast.ImportFrom)) and "tomli" in ast.dump(n)
                               for n in ast.walk(h)) for h in node.handlers)
            if fallback:
                guarded.update(id(n) for s in node.body for n in ast.walk(s))
    return [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            and id(n) not in guarded and _imports_tomllib(n)]


def _python_files(paths: List[Path]) -> List[Path]:
    found = []
    for path in paths:
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def check_python(paths) -> List[str]:
    """Problems that stop ``paths`` (a folder, a file, or a list of them) from running on Python 3.10."""
    paths = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return [f"no such file or folder: {', '.join(missing)}"]
    try:
        result = subprocess.run(vermin_command(paths), capture_output=True, text=True)
    except FileNotFoundError:
        return ["vermin is not installed (pip install -e '.[dev]')"]
    problems = []
    if result.returncode != 0:
        lines = [l for l in result.stdout.splitlines() if l.strip() and not l.startswith(("Detecting", "Analyzing"))]
        problems.append("vermin: " + "\n  ".join(lines or [result.stderr.strip()]))
    for path in _python_files(paths):
        for line in unguarded_tomllib(path):
            problems.append(f"{path}:{line}: tomllib (3.11) imported without a tomli fallback")
    return problems


# --- aarch64 wheels ------------------------------------------------------------------------------------

def runtime_requirements(pyproject: Path) -> List[str]:
    """Requirement strings that apply on the target (markers evaluated for CPython 3.10 on aarch64 Linux)."""
    from packaging.requirements import Requirement

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = list(project.get("dependencies", [])) + list(project.get("optional-dependencies", {}).get("systemd", []))
    kept = []
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(PIP_MARKERS):
            requirement.marker = None
            kept.append(str(requirement))
    return kept


def find_wheel(requirement: str, workdir: Path) -> tuple:
    """(wheel file name, "") when pip finds an aarch64 CPython 3.10 wheel, else (None, pip's reason)."""
    report = workdir / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
               "--only-binary=:all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
               "--target", str(workdir / "target"), "--quiet", "--report", str(report)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    result = subprocess.run(command + [requirement], capture_output=True, text=True)
    if result.returncode != 0:
        errors = ([l for l in result.stderr.splitlines() if l.startswith("ERROR")]
                  or result.stderr.strip().splitlines()[-1:] or ["pip failed"])
        return None, errors[0]
    installs = json.loads(report.read_text()).get("install", [])
    return (installs[0]["download_info"]["url"].rsplit("/", 1)[-1] if installs else None), ""


def check_wheels(requirements: List[str], exceptions: Optional[Dict[str, str]] = None) -> List[dict]:
    """One row per requirement: name, requirement, status ("wheel" | "exception" | "missing"), detail."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    exceptions = {canonicalize_name(k): v for k, v in (EXCEPTIONS if exceptions is None else exceptions).items()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="check-target-") as tmp:
        for text in requirements:
            name = canonicalize_name(Requirement(text).name)
            if name in exceptions:
                rows.append({"name": name, "requirement": text, "status": "exception", "detail": exceptions[name]})
                continue
            wheel, reason = find_wheel(text, Path(tmp))
            ok = wheel is not None and ("aarch64" in wheel or wheel.endswith("-none-any.whl"))
            rows.append({"name": name, "requirement": text, "status": "wheel" if ok else "missing",
                         "detail": wheel if ok else (reason or f"no aarch64 wheel ({wheel})")})
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Check that talkerd runs on Python 3.10 / aarch64 (JetPack 6).")
    parser.add_argument("--skip-python", action="store_true", help="skip the Python 3.10 check")
    parser.add_argument("--skip-wheels", action="store_true", help="skip the aarch64 wheel check (needs the index)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    python_problems = [] if args.skip_python else check_python([ROOT / p for p in KIOSK_CODE])
    rows = [] if args.skip_wheels else check_wheels(
        runtime_requirements(ROOT / "pyproject.toml") + sorted(NATIVE_TRANSITIVE))
    failed = bool(python_problems) or any(r["status"] == "missing" for r in rows)
    if args.json:
        print(json.dumps({"python": python_problems, "wheels": rows, "ok": not failed}, indent=2))
        return 1 if failed else 0
    if not args.skip_python:
        print(f"Python {TARGET_PYTHON}: " + ("ok" if not python_problems else "NOT MET"))
        for problem in python_problems:
            print("  " + problem)
    if rows:
        print(f"aarch64 wheels for CPython {TARGET_PYTHON} (manylinux, glibc <= 2.{GLIBC_MINOR}):")
        width = max(len(r["name"]) for r in rows)
        for row in rows:
            print(f"  {row['name']:<{width}}  {row['status']:<9}  {row['detail']}")
    print("target check: " + ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
