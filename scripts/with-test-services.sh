#!/usr/bin/env bash
# Runs a command with the services the tests use: an isolated PulseAudio (a null-sink speaker "spk",
# a virtual mic "mic" that hears the speaker, and a FIFO mic "fifo_mic") and an Xvfb display with a
# window manager. Everything lives in a private runtime directory and is stopped on exit.
set -euo pipefail

RUNTIME=$(mktemp -d /tmp/talkerd-test.XXXXXX)
mkdir -p "$RUNTIME/pulse" "$RUNTIME/home"
export XDG_RUNTIME_DIR="$RUNTIME" PULSE_RUNTIME_PATH="$RUNTIME/pulse" PULSE_STATE_PATH="$RUNTIME/pulse"
export PULSE_SERVER="unix:$RUNTIME/pulse/native" HOME="$RUNTIME/home"
export TALKERD_TEST_MIC_FIFO="$RUNTIME/mic.fifo"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$RUNTIME/pulse/pid" ] && kill "$(cat "$RUNTIME/pulse/pid")" 2>/dev/null || true
  rm -rf "$RUNTIME"
}
trap cleanup EXIT

cat >"$RUNTIME/default.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$RUNTIME/pulse/native
load-module module-null-sink sink_name=spk rate=16000 channels=1 norewinds=1
load-module module-remap-source source_name=mic master=spk.monitor
load-module module-pipe-source source_name=fifo_mic file=$TALKERD_TEST_MIC_FIFO format=s16le rate=16000 channels=1
set-default-sink spk
set-default-source mic
PA
if command -v pulseaudio >/dev/null; then
  pulseaudio --daemonize=yes --exit-idle-time=-1 --disallow-exit=yes -n -F "$RUNTIME/default.pa" \
    --log-target=file:"$RUNTIME/pulse.log" --use-pid-file=yes
  for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.05; done
  pactl info >/dev/null 2>&1 && export TALKERD_TEST_PULSE=1 || echo "warning: PulseAudio did not start" >&2
fi

if command -v Xvfb >/dev/null; then
  for n in $(seq 90 140); do [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || break; done
  Xvfb ":$n" -screen 0 1280x720x24 -nolisten tcp >"$RUNTIME/xvfb.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do xdpyinfo -display ":$n" >/dev/null 2>&1 && break; sleep 0.05; done
  if xdpyinfo -display ":$n" >/dev/null 2>&1; then
    export DISPLAY=":$n" TALKERD_TEST_DISPLAY=1
    if command -v matchbox-window-manager >/dev/null; then
      matchbox-window-manager -use_titlebar no >"$RUNTIME/wm.log" 2>&1 &
      pids+=($!)
    fi
  else
    echo "warning: Xvfb did not start" >&2
  fi
fi

"$@"
