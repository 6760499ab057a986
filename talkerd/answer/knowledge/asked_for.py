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

from .parts import split_sentences, statement_parts
from .text import stem, words

MAX_WORDS = 400
"""Words of a question or answer read (both are far shorter)."""

PRICE = (
    r"\bhow much\b(?! (time|longer|further|later|earlier|more time|of)\b)",  # not "how much longer"
    r"\bcosts?\b",
    r"\bprices?\b",
    r"\b(a|any|the|extra) charge\b(?! for (my|your|a|the) (phone|laptop|tablet|battery|car)\b)",
    r"\b(do|will) you charge\b",
    r"\bfees?\b",
    r"\b(do|will|would) (i|we) (have|need) to pay\b",
)
"""Phrases that ask for a price (regular expressions over normalised words)."""
NOT_PRICE = (
    r"\b(where|how|when) (do|can|should|would) (i|we) (have to |need to )?pay\b",
    r"\bpay (by|with|in|using|at)\b",
)
"""Phrases about paying that ask where or how, not how much ("Where do I have to pay?")."""
PERSON = (
    r"\bwho (?:is|are|was|were) (?:the|your|this|that) (?!(?:best|right|person|people|one|staff|man|woman|lady)\b)(\w+)",
    r"\bwho (runs|owns|manages|founded|started|built|made|designed|wrote|painted|created)\b",
    r"\bname of (?:the|your|this|that) (\w+)",
)
"""Phrases that ask for a person; the group is the role asked about ("manager", "founded"). "Who is the
best person to ask" asks for help, not for someone by name."""
ROLE_PREFIX = 5
"""Letters a role and an answer's word share to be one word family ("manages" and "manager", "founded"
and "founder"): stems alone keep them apart."""

_AMOUNT = re.compile(
    r"[£$€]\s?\d"
    r"|\d\s?p\b(?!\.?m\b)"  # 50p, not 5 p.m.
    r"|(\d|\b(a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
    r"|hundred))\s+(pounds?|pence|quid|dollars?|euros?|cents?)\b"
)
"""An amount of money as signs and fact sheets write one ("£12", "50p", "two pounds eighty"); a street
called Pound Lane is none."""
_FREE = re.compile(r"\bfree\b|\bno (extra )?(charge|cost)\b", re.IGNORECASE)
_FREE_OF_SOMETHING = re.compile(
    r"\b(gluten|sugar|dairy|nut|step|hands|smoke|alcohol|fat|lactose|caffeine|fragrance|scent|barrier|hassle"
    r"|stress|trouble|worry)[\s‐‑–-]+free\b|[‐‑–-]free\b|\bfeel free\b",
    re.IGNORECASE,
)
"""Free of something other than a charge ("gluten-free", "step-free access", "feel free to ask")."""
HOLIDAYS = frozenset(stem(w) for w in "christmas easter boxing new year eve bank holiday day".split())
"""Stems of the words of holidays' names: capitalised, but no one's name."""


@dataclass(frozen=True)
class Asked:
    """What a question asks for."""

    price: bool = False
    roles: frozenset[str] = frozenset()
    """Stems of the roles a question asks a person for ("manager" for "who is the manager", "found" for
    "who founded …")."""

    def __bool__(self) -> bool:
        return self.price or bool(self.roles)


@dataclass(frozen=True)
class Gives:
    """What an answer gives."""

    price: bool
    named: tuple[frozenset[str], ...]
    """The stems of each sentence with a proper name in it (``claims``: a capitalised word inside a
    sentence) that is not a day, a month or a holiday: the role asked about must be in the same sentence
    ("… in the Main Hall. We keep anything found …" names no founder; "our manager, Sarah Jones" does
    name one)."""


def asked_for(question: str) -> Asked:
    text = " ".join(words(question, MAX_WORDS))
    price = any(re.search(p, text) for p in PRICE) and not any(re.search(p, text) for p in NOT_PRICE)
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


def _has_price(answer: str) -> bool:
    return _AMOUNT.search(answer) is not None or _FREE.search(_FREE_OF_SOMETHING.sub(" ", answer)) is not None


def _stems(text: str) -> frozenset[str]:
    return frozenset(stem(word) for word in words(text, MAX_WORDS))


def gives(answer: str, about: frozenset[str] | None = None) -> Gives:
    """What ``answer`` gives; with ``about`` (stems of what was asked about), a price only in a part of
    it about one of them (``parts.statement_parts``): "Friends of the Museum is £40 a year … 10 % off in
    the café" gives no price of a coffee in the café."""
    if about is None:
        price = _has_price(answer)
    else:
        price = any(_has_price(part) and about & _stems(part) for part in statement_parts(answer))
    return Gives(price, tuple(_stems(sentence) for sentence in split_sentences(answer) if _has_name(sentence)))


def _says(role: str, stems: frozenset[str]) -> bool:
    return role in stems or any(s[:ROLE_PREFIX] == role[:ROLE_PREFIX] for s in stems if len(s) >= ROLE_PREFIX)


def lacks(asked: Asked, answer: Gives) -> bool:
    """The question asks for something the answer does not give: a price, or a person by name in the
    role asked about ("Who is the author at the reading?" is not answered by "We hold author readings",
    nor "Who founded the museum?" by its address)."""
    if asked.price and not answer.price:
        return True
    return bool(asked.roles) and not any(all(_says(role, stems) for role in asked.roles) for stems in answer.named)
