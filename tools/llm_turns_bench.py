#!/usr/bin/env python3
"""Time to first token over many LLM turns of one conversation: does the prompt cache keep it flat?

    tools/llm_turns_bench.py configs/default.toml [--turns 20] [--rounds 3] [--threads N] [--baseline] [--json PATH]

Each turn asks the next of a fixed list of questions through the dialogue (history kept, trimmed by
whole exchanges once it passes ``[llm] history_tokens``), and times the first text the TTS would get.
The conversation is run ``--rounds`` times (each a new visitor) and each turn's median is reported, so
one turn slowed by other work on the machine does not decide the figures.
After each answer the history is evaluated ahead (``Dialogue.prefill``, untimed), as the pipeline does
while the answer is being spoken. ``--baseline`` turns off the prompt cache's repairs and the prefill
(llama-cpp-python's own prefix reuse only), for comparison. Prints one line per turn, the 2nd and the last turn's figures, and the machine.
Exit codes: 0 done; 2 bad command line; 69 the model cannot be loaded; 78 bad config.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.answer.dialogue import Dialogue  # noqa: E402
from talkerd.answer.prompt_cache import Reuse  # noqa: E402
from talkerd.config import load_config  # noqa: E402
from talkerd.errors import TalkerError  # noqa: E402

QUESTIONS = (
    "Hello! Who are you?",
    "Can you recommend a good book for a rainy day?",
    "Do you sell maps of the city?",
    "Tell me about the café.",
    "Is there something for children?",
    "What kind of travel guides do you have?",
    "Can I sit somewhere and read?",
    "Do you have books about cooking?",
    "What do people like most here?",
    "Thank you! Anything else I should see?",
)


def machine() -> dict:
    import llama_cpp

    model = "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(), "llama_cpp_python": llama_cpp.__version__, "system": platform.platform()}


def run(dialogue: Dialogue, turns: int, baseline: bool) -> list[dict]:
    """One conversation of ``turns`` turns; one row per turn."""
    dialogue.reset()
    rows = []
    for turn in range(1, turns + 1):
        question = QUESTIONS[(turn - 1) % len(QUESTIONS)]
        start = time.perf_counter()
        first = None
        for _ in dialogue.answer(question):
            if first is None:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        stats = dialogue.last_stats
        if not baseline:
            dialogue.prefill()  # what the pipeline does while the answer is being spoken (not timed)
        rows.append({"turn": turn, "ttft_ms": round((first if first is not None else total) * 1000, 1),
                     "answer_ms": round(total * 1000, 1), "prompt_tokens": stats.prompt_tokens,
                     "evaluated_tokens": stats.evaluated_tokens, "reuse": stats.reuse.value if stats.reuse else None,
                     "history": len(dialogue.messages("")) // 2 - 1})
    return rows


def medians(rounds: list[list[dict]]) -> list[dict]:
    """Per turn: the median of the timings over the rounds, the token counts of the last round."""
    rows = []
    for turn_rows in zip(*rounds):
        row = dict(turn_rows[-1])
        for key in ("ttft_ms", "answer_ms"):
            row[key] = round(statistics.median(r[key] for r in turn_rows), 1)
            row[key + "_all"] = [r[key] for r in turn_rows]
        rows.append(row)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'turn':>4} {'ttft_ms':>9} {'answer_ms':>9} {'prompt':>7} {'evaluated':>9} {'history':>7}  reuse   ttft_ms of each round")
    for r in rows:
        print(f"{r['turn']:>4} {r['ttft_ms']:>9.1f} {r['answer_ms']:>9.1f} {r['prompt_tokens']:>7} {r['evaluated_tokens']:>9} "
              f"{r['history']:>7}  {r['reuse']:<7} {' '.join(f'{v:.0f}' for v in r['ttft_ms_all'])}")


def summary(rows: list[dict]) -> dict:
    second, last = rows[1]["ttft_ms"], rows[-1]["ttft_ms"]
    early = statistics.median(r["ttft_ms"] for r in rows[1:5])
    late = statistics.median(r["ttft_ms"] for r in rows[-5:])
    # One turn can look fast by luck (after a timed-out answer the history did not change), so the
    # slowest of the second half is shown too: trimming happens there.
    worst = max(r["ttft_ms"] for r in rows[len(rows) // 2:])
    return {"turn_2_ttft_ms": second, f"turn_{len(rows)}_ttft_ms": last, "last_over_second": round(last / second, 2),
            "median_ttft_ms_turns_2_5": early, "median_ttft_ms_last_5": late, "late_over_early": round(late / early, 2),
            "slowest_ttft_ms_second_half": worst}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="conversations to run; each turn's median is reported")
    parser.add_argument("--baseline", action="store_true", help="no prompt-cache repairs: llama-cpp-python's prefix reuse only")
    parser.add_argument("--threads", type=int, help="llama.cpp threads instead of [llm] n_threads (1 is steadier on a "
                        "machine busy with other work: llama.cpp's threads wait for each other)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.turns < 6:
        parser.error("--turns must be at least 6")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        config = load_config(args.config)
        if args.threads:
            config = config.model_copy(update={"llm": config.llm.model_copy(update={"n_threads": args.threads})})
        dialogue = Dialogue.load(config.llm, config.persona, config.venue)
    except TalkerError as exc:
        print(f"llm_turns_bench: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    if args.baseline:
        # The measurement's control: every prompt goes to llama.cpp as it is, its own prefix reuse only.
        dialogue._cache.prepare = lambda prompt, prefix, allow_shift=True: Reuse.PREFIX
    dialogue.warm_up()
    print(f"model {config.llm.model.name}, n_ctx {config.llm.n_ctx}, n_threads {config.llm.n_threads}, "
          f"history_tokens {config.llm.history_tokens}, prompt cache {'off' if args.baseline else 'on'}", flush=True)
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number} of {args.rounds} ...", flush=True)
        rounds.append(run(dialogue, args.turns, args.baseline))
    rows = medians(rounds)
    print_rows(rows)
    figures = {"summary": summary(rows), "machine": machine(), "baseline": args.baseline,
               "threads": config.llm.n_threads, "rounds": args.rounds, "turns": rows}
    for key, value in {**figures["summary"], **figures["machine"]}.items():
        print(f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    dialogue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
