"""Write sample frames (PNG) and a short clip (MP4) of the avatar, to look at it before deploying.

    python tools/render_samples.py [--config configs/default.toml] [--out out/samples]
                                   [--text "Hello! ..."] [--portrait DESCRIPTION.toml] [--bench]

Frames: silent.png, the mouth shapes (open, closed, round, wide), blink.png. Clip: turn.mp4 — one
second of idle life, the sentence spoken (mouth track from the Piper voice's phoneme timings) and a
second of idle after it; speech.wav is the sentence's audio, and with ffmpeg on the PATH
turn_with_audio.mp4 has both. ``--bench`` prints the time to draw a frame at 1280x720 and 1920x1080.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.config import load_config  # noqa: E402
from talkerd.errors import TalkerError  # noqa: E402
from talkerd.render import DefaultAvatar, PortraitAvatar, RenderLoop, TrackSource, VideoSink, make_avatar  # noqa: E402

SHAPES = {
    "open": (0.9, 0.0, 0.05, 0.1),
    "closed": (0.02, 1.0, 0.0, 0.0),
    "round": (0.5, 0.0, 0.85, 0.0),
    "wide": (0.3, 0.0, 0.0, 0.85),
}
DEFAULT_TEXT = "Hello! Welcome to Riverside Books. Bob met Pam by the map, and we open at nine."


def write_frames(avatar, out: Path) -> list[Path]:
    import cv2

    written = []

    def save(name: str, t: float, mouth) -> None:
        if avatar.smoother is not None:
            avatar.smoother.reset()  # each still shows its shape exactly, not a transition into it
        path = out / f"{name}.png"
        cv2.imwrite(str(path), avatar.draw(t, np.asarray(mouth, np.float32)))
        written.append(path)

    start = avatar.blink_times(0.0, 30.0)[0]
    save("silent", start - 0.5, np.zeros(4))
    for name, mouth in SHAPES.items():
        save(f"mouth_{name}", start - 0.5, mouth)
    closed = next(t for t in np.arange(start, start + 0.3, 0.005) if avatar.eyes_closed_at(t))
    save("blink", closed, np.zeros(4))
    return written


def speak(text: str, model: Path, fps: int) -> tuple[np.ndarray, int, np.ndarray]:
    """(int16 audio, sample rate, mouth track at ``fps``) for ``text`` from the Piper voice."""
    from piper import PiperVoice, SynthesisConfig

    from talkerd.speak import visemes
    from talkerd.messages import PhonemeTiming

    voice = PiperVoice.load(str(model), include_alignments=True)
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio, timings, position, rate = [], [], 0, voice.config.sample_rate
    for chunk in voice.synthesize(text, config, include_alignments=True):
        pairs = [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments or ()]
        for item in visemes.timings_from_alignments(pairs, rate):
            timings.append(PhonemeTiming(item.phoneme, item.start_s + position / rate, item.duration_s))
        audio.append(chunk.audio_int16_array)
        position += len(chunk.audio_int16_array)
    samples = np.concatenate(audio)
    return samples, rate, visemes.mouth_track(timings, fps, len(samples) / rate)


def write_clip(avatar, out: Path, fps: int, text: str, model: Path) -> list[Path]:
    audio, rate, track = speak(text, model, fps)
    wav = out / "speech.wav"
    lead = fps  # one second of idle life before and after
    with wave.open(str(wav), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.zeros(rate, np.int16).tobytes() + audio.tobytes())
    clip = out / "turn.mp4"
    sink = VideoSink(clip, fps, (avatar.width, avatar.height))
    frames = lead + len(track) + lead
    RenderLoop(avatar, sink, TrackSource(track, lead_in=lead), fps, pace="frames", max_frames=frames).run(threading.Event())
    sink.close()
    written = [clip, wav]
    if shutil.which("ffmpeg"):
        muxed = out / "turn_with_audio.mp4"
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(clip), "-i", str(wav), "-c:v", "copy",
                        "-c:a", "aac", "-shortest", str(muxed)], check=True)
        written.append(muxed)
    return written


def bench(portrait: Path | None, frames: int = 300) -> None:
    """Print the per-frame draw time at the two kiosk resolutions."""
    rng = np.random.default_rng(0)
    for size in ((1280, 720), (1920, 1080)):
        kinds = {"default": lambda: DefaultAvatar(*size)}
        if portrait is not None:
            kinds["portrait"] = lambda: PortraitAvatar(portrait, *size)
        for kind, build in kinds.items():
            began = time.perf_counter()
            avatar = build()
            setup = time.perf_counter() - began
            costs = []
            for n in range(frames):
                mouth = rng.random(4).astype(np.float32) * (n % 30 > 10)
                t0 = time.perf_counter()
                avatar.draw(n / 30, mouth)
                costs.append(time.perf_counter() - t0)
            ms = np.array(costs) * 1000
            print(f"{kind:8s} {size[0]}x{size[1]}: set-up {setup:.2f} s, draw p50 {np.median(ms):.2f} ms, "
                  f"p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms, layers {avatar.nbytes / 2**20:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.toml"))
    parser.add_argument("--out", default=str(ROOT / "out" / "samples"))
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the sentence of the clip")
    parser.add_argument("--portrait", help="a portrait description (TOML) to render instead of the default avatar")
    parser.add_argument("--model", default=str(ROOT / "var" / "models" / "en_US-joe-medium.onnx"), help="Piper voice")
    parser.add_argument("--no-clip", action="store_true", help="frames only")
    parser.add_argument("--bench", action="store_true", help="print draw time per frame and exit")
    args = parser.parse_args(argv)
    try:
        render = load_config(args.config).render
        if args.portrait:
            render = render.model_copy(update={"avatar": "portrait", "portrait": Path(args.portrait).resolve()})
        if args.bench:
            bench(Path(args.portrait) if args.portrait else None)
            return 0
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        written = write_frames(make_avatar(render), out)
        if not args.no_clip:
            if not Path(args.model).exists():
                print(f"error: {args.model}: no such voice model (run scripts/setup.sh, or --no-clip)", file=sys.stderr)
                return 69
            written += write_clip(make_avatar(render), out, render.fps, args.text, Path(args.model))
    except TalkerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
