#!/usr/bin/env python3
"""How well the venue knowledge routes a labelled question set: a table per question, the accuracy by
expected kind and by phrasing style, the false confident answers, and the time one match takes.

    tools/knowledge_accuracy.py configs/default.toml tests/data/venue_questions.toml [--json PATH]

Exit codes: 0 the accuracy reaches the set's ``min_accuracy`` and no uncovered venue question got a
curated answer; 1 it does not; 2 bad command line or question set; 78 bad config.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.config import load_config  # noqa: E402
from talkerd.errors import ExitCode, TalkerError  # noqa: E402
from talkerd.answer.knowledge import load_knowledge  # noqa: E402
from talkerd.answer.safety import SafetyIntents  # noqa: E402
from talkerd.answer.answerer import Answerer, VenueSnapshot  # noqa: E402
from talkerd.answer.knowledge.evaluate import Outcome, accuracy, endings, evaluate, load_questions, match_times_us  # noqa: E402

TIMING_ROUNDS = 50


def _table(outcomes: list[Outcome]) -> None:
    print(f"{'#':>3}  {'style':<9} {'expected':<22} {'got':<22} {'score':>5}  ok  question")
    for number, o in enumerate(outcomes, start=1):
        expected = o.question.kind.value + (f":{o.question.topic}" if o.question.topic else "")
        got = o.match.kind.value + (f":{o.match.topic}" if o.match.topic else "")
        mark = "yes" if o.correct else ("NO!" if o.false_confident else "no")
        print(f"{number:>3}  {o.question.style:<9} {expected:<22} {got:<22} {o.match.score:5.2f}  {mark:<3} {o.question.text}")


def _groups(outcomes: list[Outcome], key) -> dict[str, tuple[int, int]]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[key(o)].append(o)
    return {name: (sum(o.correct for o in group), len(group)) for name, group in groups.items()}


def _print_groups(title: str, groups: dict[str, tuple[int, int]]) -> None:
    print(f"\n{title}")
    for name, (right, total) in groups.items():
        print(f"  {name:<10} {right:>3}/{total:<3} {100.0 * right / total:6.1f} %")


def _endings(config, knowledge, outcomes: list[Outcome]):
    """What the answerer ends a ``facts`` turn with, without an LLM (as when the guard stops one)."""
    decide = Answerer(VenueSnapshot.of(config, knowledge), None).decide
    answers = {entry.topic: entry.answer for entry in config.venue.entries}
    return endings(outcomes, lambda question: decide(question).text, config.persona.unknown_answer, answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="talkerd config file")
    parser.add_argument("questions", help="labelled question set (TOML)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--rounds", type=int, default=TIMING_ROUNDS, help="timing rounds over the set")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        question_set = load_questions(args.questions)
        knowledge = load_knowledge(config)
    except TalkerError as exc:
        print(f"knowledge_accuracy: {exc.message}", file=sys.stderr)
        return exc.exit_code
    outcomes = evaluate(knowledge, question_set.questions, SafetyIntents(config.safety, knowledge.embedder, knowledge.semantic_index))
    _table(outcomes)
    by_kind = _groups(outcomes, lambda o: o.question.kind.value)
    by_style = _groups(outcomes, lambda o: o.question.style or "-")
    _print_groups("accuracy by expected kind", by_kind)
    _print_groups("accuracy by style", by_style)
    overall = accuracy(outcomes)
    false_confident = [o.question.text for o in outcomes if o.false_confident]
    confident_wrong = [o.question.text for o in outcomes if o.confident_wrong]
    false_alarms = [o.question.text for o in outcomes if o.false_alarm]
    times = sorted(match_times_us(knowledge, question_set.questions, args.rounds))
    timing = {
        "median_us": round(statistics.median(times), 1),
        "mean_us": round(statistics.fmean(times), 1),
        "p95_us": round(times[int(0.95 * (len(times) - 1))], 1),
        "max_us": round(times[-1], 1),
    }
    matching = f"words and meaning ({config.knowledge.embedding_engine})" if config.knowledge.semantic else "words"
    print(f"\nmatching by {matching}")
    print(f"overall    {sum(o.correct for o in outcomes)}/{len(outcomes)} = {100.0 * overall:.1f} % "
          f"(required {100.0 * question_set.min_accuracy:.0f} %)")
    print(f"false confident answers to uncovered venue questions: {len(false_confident)}")
    print(f"answers spoken as written and wrong: {len(confident_wrong)}")
    print(f"questions that are no emergency taken for one: {len(false_alarms)}")
    ended = _endings(config, knowledge, outcomes)
    print("what a facts question ends with when the guard stops the LLM (or there is none): "
          + (", ".join(f"{ending.value} {len(texts)}" for ending, texts in ended.items()) or "none"))
    print(f"match time over {len(times)} calls: median {timing['median_us']} µs, mean {timing['mean_us']} µs, "
          f"p95 {timing['p95_us']} µs, max {timing['max_us']} µs")
    if args.json:
        figures = {
            "accuracy": overall,
            "required": question_set.min_accuracy,
            "by_kind": {k: {"correct": r, "total": t} for k, (r, t) in by_kind.items()},
            "by_style": {k: {"correct": r, "total": t} for k, (r, t) in by_style.items()},
            "false_confident": false_confident,
            "confident_wrong": confident_wrong,
            "false_alarms": false_alarms,
            "match_time": timing,
            "fallback_endings": {ending.value: texts for ending, texts in ended.items()},
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    passed = overall >= question_set.min_accuracy and not false_confident
    return ExitCode.OK if passed else ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
