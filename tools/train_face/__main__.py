"""Reproduce the face engine end to end: corpus → targets → training → ONNX + manifest → evaluation.

    python -m tools.train_face [--train 1000] [--steps 5000] [--seed 7]

Needs the development extra `train` (torch, CPU build) and the Piper voice in var/models. Writes
engines/face-mouth/{model.onnx,manifest.toml} and docs/face-eval.md; the synthesised corpus is
cached in var/face-train (``--fresh`` synthesises it again).

Exit codes: 0 done, 2 bad arguments, 69 torch or the voice is missing.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("train_face")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.train_face", description=__doc__.splitlines()[0])
    parser.add_argument("--voice", type=Path, default=ROOT / "var/models/en_US-joe-medium.onnx")
    parser.add_argument("--train", type=int, default=1000, help="training utterances")
    parser.add_argument("--steps", type=int, default=5000, help="training steps")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=160, help="feature frames per network run")
    parser.add_argument("--context", type=int, default=32, help="overlap frames at each window edge")
    parser.add_argument("--engine-dir", type=Path, default=ROOT / "engines/face-mouth")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs/face-eval.md")
    parser.add_argument("--cache", type=Path, default=ROOT / "var/face-train")
    parser.add_argument("--fresh", action="store_true", help="synthesise the corpus again")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="only evaluate the engine in --engine-dir on the held-out sentences and print the figures")
    args = parser.parse_args(argv)
    if min(args.train, args.steps) < 1:
        parser.error("--train and --steps must be at least 1")
    if args.window <= 2 * args.context:
        parser.error("--window must be longer than twice --context")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse(argv)
    if args.evaluate_only:
        return evaluate_only(args)
    try:
        import torch
    except ImportError:
        print("train_face: torch is missing: .venv/bin/pip install -e '.[train]'", file=sys.stderr)
        return 69
    if not args.voice.exists():
        print(f"train_face: no Piper voice at {args.voice} (run scripts/setup.sh)", file=sys.stderr)
        return 69
    torch.set_num_threads(1)  # the development machine's cores are shared
    from talkerd.speak.mouth_engine import FEATURE_RATE, N_MELS

    from . import corpus, evaluate, model, report, sentences, train

    if args.context < model.RECEPTIVE_HALF:
        log.warning("context %d is below the receptive field %d: windows will show seams", args.context,
                    model.RECEPTIVE_HALF)
    train_texts = sentences.generate(args.train, args.seed)
    # each held-out sentence twice: at a random rate and noise, and as the daemon speaks (noise off)
    held_texts = list(sentences.HELD_OUT)
    voice = corpus.load_voice(args.voice)
    # the cache is named after its sentences, so a change to the generator synthesises afresh
    tag = f"seed{args.seed}-" + hashlib.sha1("\n".join(train_texts + held_texts).encode()).hexdigest()[:10]
    if args.fresh:
        for name in (f"train-{tag}.npz", f"held-{tag}.npz"):
            (args.cache / name).unlink(missing_ok=True)
    started = time.monotonic()
    train_set = corpus.build(voice, train_texts, args.seed, args.cache / f"train-{tag}.npz")
    held_set = corpus.build(voice, held_texts, args.seed + 1, args.cache / f"held-{tag}.npz", plain_too=True)
    log.info("corpus ready in %.0f s", time.monotonic() - started)
    examples = [corpus.prepare(u) for u in train_set]

    started = time.monotonic()
    net = train.train(examples, steps=args.steps, seed=args.seed)
    train_s = time.monotonic() - started
    args.engine_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.engine_dir / "model.onnx"
    model.export(net, onnx_path, args.window, args.context,
                 {"source": "tools/train_face", "seed": str(args.seed), "licence": "MIT"})
    report.write_manifest(args.engine_dir, onnx_path.name, args.window, args.context, N_MELS, FEATURE_RATE)
    result = evaluate.evaluate(args.engine_dir, held_set, args.cache)
    report.write_evaluation(
        args.doc, result, train_utterances=len(train_set), train_audio_s=sum(u.duration_s for u in train_set),
        steps=args.steps, seed=args.seed, train_s=train_s, window=args.window, context=args.context,
        parameters=sum(p.numel() for p in net.parameters()),
    )
    print(f"jaw correlation {result.jaw_correlation:.3f}, p/b/m closed {100 * result.bilabial_closed:.1f}%, "
          f"{result.ms_per_audio_s:.1f} ms per second of audio; wrote {onnx_path} and {args.doc}")
    return 0


def evaluate_only(args: argparse.Namespace) -> int:
    """Figures of an existing engine (no torch needed): a benchmark for this machine."""
    from talkerd.errors import TalkerError

    from . import corpus, evaluate, sentences

    if not args.voice.exists():
        print(f"train_face: no Piper voice at {args.voice} (run scripts/setup.sh)", file=sys.stderr)
        return 69
    voice = corpus.load_voice(args.voice)
    held_set = corpus.build(voice, list(sentences.HELD_OUT), args.seed + 1, None, plain_too=True)
    try:
        result = evaluate.evaluate(args.engine_dir, held_set, args.cache)
    except TalkerError as exc:
        print(f"train_face: {exc.message}", file=sys.stderr)
        return exc.exit_code
    for name, value in vars(result).items():
        print(f"{name:24} {value:.4g}" if isinstance(value, float) else f"{name:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
