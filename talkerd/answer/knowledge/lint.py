"""What an integrator should hear about a venue's knowledge before a visitor finds it: the config is valid,
but the knowledge will answer some questions with the wrong entry (``talkerd check-config``).

- ``shared_keyword``: a keyword in two entries' keywords (compared as stems); a question with
  only that word in common with either goes to whichever scores higher ("late" in both "closing time"
  and "late opening": "How late can I get in today?" got the Thursday lates);
- ``own_question``: one of an entry's own curated questions is not answered by that entry as written
  (an emergency, small talk, another entry, both briefly, the LLM): the entry cannot be reached the way
  it was written for, so visitors' rephrasings of it will not be either;
- ``words_only``: ``knowledge.semantic`` is on but its engine cannot run here, so questions are matched
  by their words alone and emergencies by their phrases (the daemon does the same, with a warning in
  its log); the other warnings are then for matching by words.

Warnings do not stop the kiosk: the config is valid, and the exit code stays 0.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ...config import VenueConfig
from .matcher import Match, MatchKind
from .text import stem, words

MAX_KEYWORD_WORDS = 8


@dataclass(frozen=True)
class VenueWarning:
    """One thing about the venue's knowledge worth changing, with a stable code."""

    code: str
    """``shared_keyword``, ``own_question`` or ``words_only``."""
    message: str
    """What was found, naming the entries and the words, and what to do."""


def _keyword_key(keyword: str) -> str:
    return " ".join(stem(w) for w in words(keyword, MAX_KEYWORD_WORDS))


def shared_keywords(venue: VenueConfig) -> list[VenueWarning]:
    """Keywords that two or more entries list (compared as stems: "late" and "lates" are one)."""
    owners: dict[str, list[str]] = defaultdict(list)
    written: dict[str, str] = {}
    for entry in venue.entries:
        for keyword in entry.keywords:
            key = _keyword_key(keyword)
            if key and entry.topic not in owners[key]:
                owners[key].append(entry.topic)
                written.setdefault(key, keyword)
    return [VenueWarning("shared_keyword",
                         f"keyword {written[key]!r} is in the entries {', '.join(map(repr, topics))}: a question with only "
                         "that word in common goes to one of them; keep it in the entry it names best, or write the "
                         "others' questions out")
            for key, topics in owners.items() if len(topics) > 1]


def _got(match: Match) -> str:
    if match.kind in (MatchKind.CURATED, MatchKind.AMBIGUOUS, MatchKind.FACTS) and match.topic:
        return f"{match.kind.value} {match.topic!r}"
    return match.kind.value


def own_questions(venue: VenueConfig, match: Callable[[str], Match], emergency: Callable[[str], object | None]) -> list[VenueWarning]:
    """Each entry's curated questions matched as a visitor would ask them; one not answered by its own
    entry as written is a warning."""
    found = []
    for entry in venue.entries:
        for question in entry.questions:
            if emergency(question) is not None:
                got = "the emergency answer (a safety intent matches it first)"
            else:
                matched = match(question)
                if matched.kind is MatchKind.CURATED and matched.topic == entry.topic:
                    continue
                got = f"{_got(matched)} ({matched.reason})"
            found.append(VenueWarning("own_question", f"entry {entry.topic!r}: its question {question!r} gets {got}; "
                                                      "reword it, or give the entry a keyword or synonym that only it has"))
    return found


def venue_warnings(venue: VenueConfig, match: Callable[[str], Match],
                   emergency: Callable[[str], object | None] = lambda question: None) -> list[VenueWarning]:
    """Every warning about the venue's knowledge: ``match`` is the knowledge's (``VenueKnowledge.match``),
    ``emergency`` the safety intents' (``SafetyIntents.match``), asked first as the answerer does."""
    return shared_keywords(venue) + own_questions(venue, match, emergency)


def check_venue(config) -> list[VenueWarning]:
    """The warnings for a whole ``config.Config``: its knowledge loaded as the daemon loads it (by meaning
    too when ``knowledge.semantic`` and the engine is there), its safety intents first."""
    from ..safety import SafetyIntents
    from . import open_knowledge

    knowledge, why_not = open_knowledge(config)
    fallback = [] if why_not is None else [VenueWarning(
        "words_only",
        f"knowledge.semantic is on, but the engine {config.knowledge.embedding_engine!r} cannot run "
        f"({why_not}): questions are matched by their words only, emergencies by their phrases",
    )]
    try:
        safety = SafetyIntents(config.safety, knowledge.embedder, knowledge.semantic_index)
        return fallback + venue_warnings(config.venue, knowledge.match, safety.match)
    finally:
        if knowledge.embedder is not None:
            knowledge.embedder.close()
