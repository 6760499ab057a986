#!/usr/bin/env python3
"""Choose the semantic matcher's thresholds on a calibration question set: every combination of
``knowledge.semantic_floor``, ``semantic_confident``, ``ambiguity_margin`` and ``semantic_veto`` on a
grid, ranked by accuracy with no false confident answer (a curated answer to a question the knowledge
does not cover). Calibrate on a set that is not used to report the accuracy afterwards.

    tools/calibrate_semantic.py configs/default.toml tests/data/venue_questions_calibration.toml [--top N]

Exit codes: 0 ok, 2 bad command line or question set, 69 the embedding engine is missing, 78 bad config.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from talkerd.config import load_config  # noqa: E402
from talkerd.errors import ExitCode, TalkerError  # noqa: E402
from talkerd.answer.knowledge import VenueKnowledge  # noqa: E402
from talkerd.answer.knowledge.evaluate import accuracy, evaluate, load_questions  # noqa: E402
from talkerd.answer.knowledge.semantic import EngineEmbedder  # noqa: E402

GRID = {
    # Around the chosen values; a first, wider sweep (floor 0 to 0.4, confident 0.55 to 0.8, veto 0.01 to
    # 0.4) found nothing better further out.
    "semantic_floor": (0.3, 0.4, 0.5),
    "semantic_confident": (0.6, 0.65, 0.7),
    "ambiguity_margin": (0.02, 0.06, 0.1),
    "semantic_veto": (0.2, 0.3, 0.4),
}


class RememberingEmbedder:
    """Wraps the real embedder so that each text is embedded once over the whole sweep (the sweep
    rebuilds the knowledge for every combination; the vectors do not change)."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self._rows: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if missing:
            self._rows.update(zip(missing, self._embedder.embed(missing)))
        return np.stack([self._rows[t] for t in texts])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="talkerd config file (its [knowledge] is the starting point)")
    parser.add_argument("questions", help="calibration question set (TOML)")
    parser.add_argument("--top", type=int, default=10, help="how many combinations to print")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        questions = load_questions(args.questions).questions
        embedder = RememberingEmbedder(EngineEmbedder.open(config.engines, config.knowledge.embedding_engine))
    except TalkerError as exc:
        print(f"calibrate_semantic: {exc.message}", file=sys.stderr)
        return exc.exit_code
    results = []
    for values in itertools.product(*GRID.values()):
        fields = dict(zip(GRID, values))
        knowledge_cfg = config.knowledge.model_copy(update={**fields, "semantic": True})
        knowledge = VenueKnowledge(config.venue, knowledge_cfg, config.persona.unknown_answer, embedder)
        outcomes = evaluate(knowledge, questions)
        false_confident = sum(o.false_confident for o in outcomes)
        results.append((false_confident == 0, accuracy(outcomes), -false_confident, fields))
    own = {name: getattr(config.knowledge, name) for name in GRID}
    own_result = next((r for r in results if r[3] == own), None)
    results.sort(key=lambda r: (r[0], r[1], r[2]), reverse=True)
    print(f"{'accuracy':>8}  {'false conf.':>11}  " + "  ".join(GRID))
    for _, acc, negative_false, fields in results[: args.top]:
        print(f"{100 * acc:7.1f}%  {-negative_false:>11}  " + "  ".join(f"{fields[k]:>{len(k)}}" for k in GRID))
    if own_result is not None:
        print(f"the config's own values: {100 * own_result[1]:.1f}% with {-own_result[2]} false confident answers; "
              f"best on the grid: {100 * results[0][1]:.1f}%")
    else:
        print("the config's own values are not on the grid")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
