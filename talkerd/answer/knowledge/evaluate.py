"""A labelled question set and how well the venue knowledge routes it (tools/knowledge_accuracy.py).

The set is a TOML file: ``min_accuracy`` and a ``[[question]]`` table per question with ``text``,
``kind`` (curated, facts, unknown, smalltalk, emergency), optional ``topic`` (for an emergency: the
safety intent's name) and ``style``. A question is right when the kind matches and, where a topic is
given, the topic matches too. As in the answerer, the safety intents decide before the venue knowledge.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import RequestError
from .matcher import Match, MatchKind, VenueKnowledge

try:  # Python 3.11+
    import tomllib  # novermin (Python 3.11+; tomli below for 3.10)
except ModuleNotFoundError:  # Python 3.10 (JetPack 6)
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class LabelledQuestion:
    text: str
    """What the visitor said or typed."""
    kind: MatchKind
    """The route expected."""
    topic: str | None = None
    """The entry expected to answer; None when any (or none) will do."""
    style: str = ""
    """How it is phrased (rephrased, asr, typo, out, smalltalk), for the per-style figures."""


@dataclass(frozen=True)
class QuestionSet:
    questions: tuple[LabelledQuestion, ...]
    """The labelled questions, in file order."""
    min_accuracy: float
    """The accuracy the venue knowledge must reach on them."""


@dataclass(frozen=True)
class Outcome:
    question: LabelledQuestion
    """The labelled question."""
    match: Match
    """What the venue knowledge decided."""

    @property
    def correct(self) -> bool:
        expected = self.question
        return self.match.kind is expected.kind and (expected.topic is None or self.match.topic == expected.topic)

    @property
    def false_confident(self) -> bool:
        """A curated answer to a question the knowledge does not cover: the worst failure."""
        return self.match.kind is MatchKind.CURATED and self.question.kind is MatchKind.UNKNOWN

    @property
    def confident_wrong(self) -> bool:
        """An answer spoken as written (curated, ambiguous, emergency) that is not the one expected."""
        return self.match.kind in AS_WRITTEN and not self.correct

    @property
    def false_alarm(self) -> bool:
        """A question that is no emergency answered as one."""
        return self.match.kind is MatchKind.EMERGENCY and self.question.kind is not MatchKind.EMERGENCY


AS_WRITTEN = frozenset({MatchKind.CURATED, MatchKind.AMBIGUOUS, MatchKind.EMERGENCY})
"""The routes whose answer is spoken word for word, with the kiosk's confidence."""


def _fail(path: Path, where: str, problem: str) -> RequestError:
    return RequestError(f"{path}: {where}: {problem}", code="bad_question_set")


def load_questions(path: str | Path) -> QuestionSet:
    """Read a question set; raise ``RequestError`` naming the file and the question on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise _fail(path, "file", "no such file") from None
    except OSError as exc:  # a folder, no permission, …
        raise _fail(path, "file", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, "file", f"not valid TOML: {exc}") from None
    rows = data.get("question")
    if not isinstance(rows, list) or not rows:
        raise _fail(path, "question", "expected one or more [[question]] tables")
    kinds = {kind.value: kind for kind in MatchKind}
    questions = []
    for number, row in enumerate(rows, start=1):
        where = f"question {number}"
        if not isinstance(row, dict):
            raise _fail(path, where, "expected a [[question]] table")
        unknown_keys = set(row) - {"text", "kind", "topic", "style"}
        if unknown_keys:
            raise _fail(path, where, f"unknown key {sorted(unknown_keys)[0]!r}")
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise _fail(path, where, "text: expected a non-empty string")
        if row.get("kind") not in kinds:
            raise _fail(path, where, f"kind: expected one of {sorted(kinds)}, got {row.get('kind')!r}")
        questions.append(LabelledQuestion(row["text"], kinds[row["kind"]], row.get("topic"), row.get("style", "")))
    minimum = data.get("min_accuracy", 0.0)
    if not isinstance(minimum, (int, float)) or not 0.0 <= minimum <= 1.0:
        raise _fail(path, "min_accuracy", f"expected a number from 0 to 1, got {minimum!r}")
    return QuestionSet(tuple(questions), float(minimum))


def evaluate(knowledge: VenueKnowledge, questions: Sequence[LabelledQuestion], safety: Any | None = None) -> list[Outcome]:
    """Each question's outcome; ``safety`` (``answer.safety.SafetyIntents``) is asked first when given."""
    return [Outcome(q, _emergency(safety, q.text) or knowledge.match(q.text)) for q in questions]


def _emergency(safety: Any | None, question: str) -> Match | None:
    found = safety.match(question) if safety is not None else None
    if found is None:
        return None
    return Match(MatchKind.EMERGENCY, found.score, found.answer, (), found.intent, f"emergency by {found.by}")


def accuracy(outcomes: Sequence[Outcome]) -> float:
    return sum(o.correct for o in outcomes) / len(outcomes) if outcomes else 0.0


def match_times_us(knowledge: VenueKnowledge, questions: Sequence[LabelledQuestion], rounds: int) -> list[float]:
    """Per-call wall time of ``match`` in microseconds, every question ``rounds`` times."""
    times = []
    for _ in range(rounds):
        for q in questions:
            begin = time.perf_counter()
            knowledge.match(q.text)
            times.append((time.perf_counter() - begin) * 1e6)
    return times


class Ending(str, enum.Enum):
    """What a question the knowledge hands to the LLM (route ``facts``) ends with when the guard stops
    the LLM or there is none, judged by its label."""

    HONEST = "honest"
    """An uncovered question got "I don't know"."""
    NON_ANSWER = "non-answer"
    """An uncovered question got a fact."""
    RIGHT = "right"
    """A curated question got its entry's answer."""
    OTHER_FACT = "other fact"
    """A curated question got something else the venue says."""
    LOST = "lost"
    """A curated or facts question got "I don't know"."""
    A_FACT = "a fact"
    """A facts question got a fact (which one is not labelled)."""


def endings(outcomes: Sequence[Outcome], ends_with: Callable[[str], str], unknown_answer: str,
            entry_answers: Mapping[str, str]) -> dict[Ending, list[str]]:
    """The questions routed to ``facts``, by what ``ends_with`` (question → the text the turn ends with:
    the answerer's decision without an LLM) gives them; ``entry_answers``: topic → curated answer."""
    found: dict[Ending, list[str]] = {}
    for o in outcomes:
        if o.match.kind is not MatchKind.FACTS or o.question.kind not in _ENDINGS:
            continue
        said = ends_with(o.question.text)
        ending = _ENDINGS[o.question.kind](said == unknown_answer, said == entry_answers.get(o.question.topic or ""))
        found.setdefault(ending, []).append(o.question.text)
    return found


_ENDINGS: dict[MatchKind, Callable[[bool, bool], Ending]] = {
    MatchKind.UNKNOWN: lambda unknown, _: Ending.HONEST if unknown else Ending.NON_ANSWER,
    MatchKind.CURATED: lambda unknown, entry: Ending.RIGHT if entry else Ending.LOST if unknown else Ending.OTHER_FACT,
    MatchKind.FACTS: lambda unknown, _: Ending.LOST if unknown else Ending.A_FACT,
}
"""By the question's label: (it got "I don't know", it got the labelled entry's answer) → the ending."""
