"""What a question asks for — a price, a person — and whether an answer has it, so that "How much is
story time?" is not answered with story time's day and hour as if that were the price.

Words and meaning both find the entry a question is about; neither sees that the visitor wants a
particular kind of information that the entry's answer does not give. A question that asks for a kind
(``PRICE``, ``PERSON``) and an answer without it (``gives``) are a mismatch (``lacks``): the matcher weighs that entry
down, as it does an answer about other days (``days``), so it may inform the LLM (whose claims the
grounding guard checks) but is never spoken as written.

- **price**: "how much", "what does it cost", "the price of", "is there a charge", "do I have to pay";
  an answer has one when it names an amount of money (£12, 5 pounds, two pounds eighty) or says it is
  free or without charge ("gluten-free" and "step-free" are no price).
- **person**: "who is the manager", "who founded …", "the name of the curator"; an answer has one when
  it says the role asked about ("manager", "founded") and a proper name: a capitalised word inside a
  sentence that is not a day, a month or a holiday ("Thursday evenings" names no one).

Patterns run over the normalised question ("what's" → "what is"); "who can help me" and "who do I ask"
ask for help, not for a name, and are not read.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .text import stem, words

MAX_WORDS = 400
"""Words of a question or answer read (both are far shorter)."""

PRICE = (
    r"how much",
    r"\bcosts?\b",
    r"\bprices?\b",
    r"\b(a|any|the|extra) charge\b",  # not "can I charge my phone"
    r"\b(do|will) you charge\b",
    r"\bfees?\b",
    r"\b(have|need) to pay\b",
    r"\bpay for\b",
)
"""Phrases that ask for a price (regular expressions over normalised words)."""
PERSON = (
    r"\bwho (?:is|are|was|were) (?:the|your|this|that) (\w+)",
    r"\bwho (runs|owns|manages|founded|started|built|made|designed|wrote|painted|created)\b",
    r"\bname of (?:the|your|this|that) (\w+)",
)
"""Phrases that ask for a person; the group is the role asked about ("manager", "founded")."""

_MONEY = re.compile(
    r"[£$€]\s?\d|\d\s?(p|c)\b|\b(pounds?|pence|quid|dollars?|euros?|cents?)\b|(?<![-‐])\bfree\b(?![-‐])"
    r"|\bno (extra )?(charge|cost)\b",
    re.IGNORECASE,
)
HOLIDAYS = frozenset(stem(w) for w in "christmas easter boxing new year eve bank holiday day".split())
"""Stems of the words of holidays' names: capitalised, but no one's name."""


@dataclass(frozen=True)
class Asked:
    """What a question asks for."""

    price: bool = False
    roles: frozenset[str] = frozenset()
    """Stems of the roles a question asks a person for ("manag" for "who is the manager")."""

    def __bool__(self) -> bool:
        return self.price or bool(self.roles)


@dataclass(frozen=True)
class Gives:
    """What an answer gives."""

    price: bool
    name: bool
    """A proper name (``claims``: a capitalised word inside a sentence) that is not a day, a month or a
    holiday."""
    stems: frozenset[str]


def asked_for(question: str) -> Asked:
    text = " ".join(words(question, MAX_WORDS))
    price = any(re.search(pattern, text) for pattern in PRICE)
    roles = frozenset(stem(m.group(1)) for pattern in PERSON for m in re.finditer(pattern, text))
    return Asked(price, roles)


@functools.lru_cache(maxsize=1)
def _no_one() -> frozenset[str]:
    """Claim keys of capitalised words that name no one: days, months, holidays."""
    from ..claims import DAYS  # not at the top: claims imports knowledge.text, and so this package

    return frozenset(f"w:{s}" for s in DAYS | HOLIDAYS)


def _has_name(answer: str) -> bool:
    """A proper name, as the grounding guard reads one (``claims``), that is not a day, month or holiday."""
    from ..claims import ClaimKind, claims

    return any(c.kind is ClaimKind.NAME and not c.keys <= _no_one() for c in claims(answer))


def gives(answer: str) -> Gives:
    stems = frozenset(stem(word) for word in words(answer, MAX_WORDS))
    return Gives(_MONEY.search(answer) is not None, _has_name(answer), stems)


def lacks(asked: Asked, answer: Gives) -> bool:
    """The question asks for something the answer does not give: a price, or a person by name in the
    role asked about ("Who is the author at the reading?" is not answered by "We hold author readings",
    nor "Who founded the museum?" by its address)."""
    if asked.price and not answer.price:
        return True
    return bool(asked.roles) and not (answer.name and asked.roles <= answer.stems)
