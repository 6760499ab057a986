#!/usr/bin/env python3
"""What the LLM says, behind the grounding guard, to the questions of a set the venue does not cover.

    tools/llm_inventions.py CONFIG SET [--all-llm] [--json PATH]

Takes the set's questions labelled ``kind = "unknown"`` (the knowledge does not cover them; with
``--all-llm``, every question), answers each with the config's real answerer — safety, the venue
knowledge, the LLM (``llm.model``) and the grounding guard — keeping no history, and prints for each one
that reached the LLM its route, the clauses the guard stopped, what was spoken, and the words of it that
nothing the venue, the persona or the question supports (an oracle of digit runs and capitalised words,
independent of the guard's rules). What the oracle cannot see (an invented opinion, a false sentence of
true words) is for a person to read in the printed answers.
Exit codes: 0 done (whatever it found); 2 bad command line; 69 a component cannot be loaded; 78 bad
config or set.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.answer.answerer import Answerer  # noqa: E402
from talkerd.answer.dialogue import Dialogue  # noqa: E402
from talkerd.answer.guard import venue_texts  # noqa: E402
from talkerd.answer.knowledge import MatchKind  # noqa: E402
from talkerd.answer.knowledge.evaluate import load_questions  # noqa: E402
from talkerd.bench.inventions import answer_all  # noqa: E402
from talkerd.bench.latency import machine_description  # noqa: E402
from talkerd.components import venue_snapshot  # noqa: E402
from talkerd.config import load_config  # noqa: E402
from talkerd.errors import ExitCode, TalkerError  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("questions", type=Path, help="labelled question set (TOML)")
    parser.add_argument("--all-llm", action="store_true", help="every question of the set, not only the uncovered")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        question_set = load_questions(args.questions)
        asked = [q.text for q in question_set.questions if args.all_llm or q.kind is MatchKind.UNKNOWN]
        dialogue = Dialogue.load(config.llm, config.persona, config.venue)
    except TalkerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    try:
        answerer = Answerer(venue_snapshot(config), dialogue)
        support = " ".join(venue_texts(config.persona, config.venue))
        found = answer_all(answerer, asked, support)
    finally:
        dialogue.close()
    through_llm = [a for a in found if a.through_llm]
    print(f"machine: {machine_description()}")
    print(f"LLM: {config.llm.model.name}")
    for answer in through_llm:
        blocked = f"  guard: {'; '.join(answer.blocked)}" if answer.blocked else ""
        flag = f"  UNSUPPORTED: {', '.join(answer.unsupported)}" if answer.unsupported else ""
        print(f"- [{answer.route}] {answer.question}\n    → {answer.spoken}{blocked}{flag}")
    summary = {
        "questions": len(found), "through_llm": len(through_llm),
        "cut_by_guard": sum(bool(a.blocked) for a in through_llm),
        "with_unsupported_words": sum(bool(a.unsupported) for a in through_llm),
    }
    print(f"{summary['questions']} questions, {summary['through_llm']} answered by the LLM, "
          f"{summary['cut_by_guard']} of them cut by the guard, {summary['with_unsupported_words']} spoken "
          "with a number or name nothing supports")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_description(), **summary,
                                         "answers": [asdict(a) for a in found]}, indent=2))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
