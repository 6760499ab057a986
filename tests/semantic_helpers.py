"""The sentence-embedding engine minilm-l6 exported into a test's own build folder, and a development
config that uses it, so that tests of matching by meaning run on the real encoder without the machine's
var/engines having been provisioned."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from talkerd.config import EnginesConfig
from tests.conftest import DEFAULT_CONFIG, MODELS, ROOT

sys.path.insert(0, str(ROOT / "tools"))

import prepare_engines  # noqa: E402
import provision_models  # noqa: E402

ENGINE = "minilm-l6"


def minilm_source() -> Path:
    """The packaged model folder (zip): as provisioned in var/models, else straight from its package."""
    name = "all-MiniLM-L6-v2.zip"
    provisioned = MODELS / name
    if provisioned.exists():
        return provisioned
    package, inner = provision_models.PACKAGED_MODELS[name]
    return provision_models.package_dir(package) / inner


def minilm_job(build_dir: Path, engines_dir: Path = ROOT / "engines") -> prepare_engines.Job:
    """The setup step's job for the minilm-l6 engine, with its output under ``build_dir``."""
    (job,) = [j for j in prepare_engines.find_jobs(engines_dir, build_dir, MODELS) if j.name == ENGINE]
    return dataclasses.replace(job, source=minilm_source())


def export_minilm(build_dir: Path) -> EnginesConfig:
    """Run the real setup step for minilm-l6 into ``build_dir``; the engines config that finds it."""
    prepare_engines.prepare(minilm_job(build_dir), force=False, print_sha=False)
    return EnginesConfig(dir=ROOT / "engines", build_dir=build_dir, backend="onnxruntime", cpu_threads=2)


def semantic_config(path: Path, engines: EnginesConfig, source: Path = DEFAULT_CONFIG) -> Path:
    """A config of the repository (knowledge.semantic on; the development one unless ``source``) with
    every path absolute and its engines' build folder at ``engines.build_dir``."""
    up = "../" * len(source.parent.relative_to(ROOT).parts)
    text = source.read_text().replace(f'build_dir = "{up}var/engines"', f'build_dir = "{engines.build_dir}"')
    path.write_text(text.replace(f'"{up}', f'"{ROOT}/'))
    return path


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """The minilm-l6 engine exported into the module's own build folder (its engines config)."""
    return export_minilm(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def embedder(engines):
    """The real sentence embedder on that engine, closed after the module."""
    from talkerd.answer.knowledge.semantic import EngineEmbedder

    embedder = EngineEmbedder.open(engines, ENGINE)
    yield embedder
    embedder.close()
