#!/usr/bin/env python3
"""How fast a fresh vosk recogniser decodes, cold and warmed on the venue's questions.

    tools/asr_warm_up_bench.py configs/default.toml [--rounds 3] [--questions N] [--json PATH]

Each round loads a cold recogniser and a warmed one (``VoskAsr.warm_up`` on the first
``asr.warm_up_questions`` venue questions, said by the kiosk's own voice, as the daemon does), then
times both on the same visitor questions (espeak-ng, another voice), fed as fast as they go: the real-time
factor of the first question and of the ones after it (below 1 keeps up with a visitor; the rest of a
slow first question is what the visitor waits for at the end of the turn). Prints the medians over the
rounds, the warmed/cold ratio, how long the warm-up took, what the warmed recogniser's graph cache
holds (C heap, glibc only), and the machine. ``--questions``: instead of the config's count.
Exit codes: 0 done; 2 bad command line; 69 a component cannot be loaded; 78 bad config.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.answer.answerer import Answerer  # noqa: E402
from talkerd.audio import read_wav_mono  # noqa: E402
from talkerd.bench.blackbox import QUESTIONS  # noqa: E402
from talkerd.bench.latency import machine_description, synthesize_question  # noqa: E402
from talkerd.bench.soak import memory_sample  # noqa: E402
from talkerd.components import venue_snapshot  # noqa: E402
from talkerd.config import load_config  # noqa: E402
from talkerd.errors import TalkerError  # noqa: E402
from talkerd.listen.asr import VoskAsr  # noqa: E402
from talkerd.registry import component  # noqa: E402
from talkerd.speak.speech_maker import SpeechMaker  # noqa: E402

FRAME = 320


def real_time_factors(asr: VoskAsr, questions, rate: int) -> list[float]:
    factors = []
    for audio in questions:
        started = time.perf_counter()
        asr.start()
        for offset in range(0, len(audio), FRAME):
            asr.accept(audio[offset : offset + FRAME].tobytes())
        asr.finish()
        factors.append((time.perf_counter() - started) / (len(audio) / rate))
    return factors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, help="warm-up questions (default: asr.warm_up_questions)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        rate = config.audio.capture_rate
        count = config.asr.warm_up_questions if args.questions is None else args.questions
        texts = Answerer(venue_snapshot(config), None).example_questions(count)
        voice = SpeechMaker(component("tts").load(config), None, config.face, rate, config.render.fps)
        warm_up = [said for said in (voice.said(text) for text in texts) if said is not None]
        with tempfile.TemporaryDirectory() as folder:
            visitors = [read_wav_mono(synthesize_question(text, Path(folder) / f"{n}.wav"), rate)
                        for n, text in enumerate(QUESTIONS)]
        rows = {"cold": [], "warmed": []}
        warm_up_s, cache_mb = [], []
        for _ in range(args.rounds):
            cold = VoskAsr.load(config.asr, rate)
            rows["cold"].append(real_time_factors(cold, visitors, rate))
            del cold
            warmed = VoskAsr.load(config.asr, rate)
            heap_before = memory_sample(0).malloc_used_mb
            started = time.perf_counter()
            warmed.warm_up([audio for audio, _ in warm_up], warm_up[0][1] if warm_up else rate)
            warmed.wait_renewed(600)
            warm_up_s.append(time.perf_counter() - started)
            if heap_before is not None:
                cache_mb.append(memory_sample(0).malloc_used_mb - heap_before)
            rows["warmed"].append(real_time_factors(warmed, visitors, rate))
            del warmed
    except TalkerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    summary = {"machine": machine_description(), "rounds": args.rounds,
               "warm_up": {"questions": len(warm_up), "speech_s": round(sum(len(a) / r for a, r in warm_up), 1),
                           "took_s_median": round(statistics.median(warm_up_s), 1),
                           "cache_mb_median": round(statistics.median(cache_mb), 1) if cache_mb else None}}
    for kind, factors in rows.items():
        summary[kind] = {"first_question_rtf": round(statistics.median(f[0] for f in factors), 2),
                         "later_questions_rtf": round(statistics.median(x for f in factors for x in f[1:]), 2)}
    summary["first_question_warmed_over_cold"] = round(
        summary["warmed"]["first_question_rtf"] / summary["cold"]["first_question_rtf"], 2)
    print(f"machine: {summary['machine']}")
    print(f"warm-up: {summary['warm_up']['questions']} venue questions, {summary['warm_up']['speech_s']} s of "
          f"speech, decoded in {summary['warm_up']['took_s_median']} s (median of {args.rounds}); "
          f"the warmed recogniser's cache: {summary['warm_up']['cache_mb_median']} MiB of C heap")
    for kind in rows:
        print(f"{kind:>7}: first question {summary[kind]['first_question_rtf']:.2f}× real time, "
              f"later ones {summary[kind]['later_questions_rtf']:.2f}×")
    print(f"first question, warmed / cold: {summary['first_question_warmed_over_cold']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
