"""The checkable claims in a text: numbers (digits and number words), times, prices, phone numbers,
days and months, proper names and places, each with the keys under which a source text supports it.

Both sides go through this module: the venue knowledge, the persona and the question are reduced once to
the set of keys they support (``supported_keys``); a clause the LLM wrote is reduced to its claims
(``claims``), and a claim holds when any one of its keys is supported. Keys are plain strings:
``n:9`` (a number), ``t:9:30`` (a time with minutes), ``w:sunday`` (a word's stem).

What counts as a claim, and why:

- every number, in digits ("9", "$5.99", "1,000", "2nd") or words ("nine", "twenty-five", "third");
  "one" is left out (it is mostly a pronoun: "the one by the door"), and "first" and "second" count
  only before a place word ("second floor") because they are mostly not numbers ("just a second");
- a time "9:30" as a whole; "5 pm" and "17:00" support each other;
- a phone number (digit groups joined by spaces, dots or dashes, seven digits or more) as all its digits;
- days of the week and months (and weekend, weekday);
- a capitalised word inside a sentence (a name: "John", "Main Street"); a capitalised word that starts
  a sentence only when the next one is capitalised too ("John Smith is …"), since every sentence starts
  with a capital;
- a place word (floor, aisle, entrance, desk, …): where something is must be where the venue says;
  with a number next to it ("third floor", "aisle 5") the pair is one claim, ``p:3:floor``;
- a number of something countable ("12 years", "two minutes", "500 books") as the pair, ``q:12:year``:
  that the venue says "12 Quay Street" does not make "12 years old" true.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .knowledge.text import stem, words

MAX_TEXT_WORDS = 100_000
"""Word bound for the texts read here (a bound, not a cut: clauses and facts are far shorter)."""

_PHONE = re.compile(r"(?<![\w.,])\+?\(?\d{2,4}\)?(?:[ .-]\(?\d{2,4}\)?){1,4}(?![\w])")
_TIME = re.compile(r"(?<![\w.$£€])(\d{1,2})[:.](\d{2})(?!\d)(?:\s*([ap])\.?m\b\.?)?", re.IGNORECASE)
_HOUR_MERIDIEM = re.compile(r"(?<![\w.:])(\d{1,2})\s*([ap])\.?m\b\.?", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
_SENTENCE_START = re.compile(r"[.!?…:;\"“(]\s*$")
MIN_PHONE_DIGITS = 7

UNITS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
ORDINALS = {
    "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    "eleventh": 11, "twelfth": 12,
}
AMBIGUOUS_ORDINALS = {"first": 1, "second": 2}
"""Numbers only before a place word ("second floor"); otherwise ordinary words ("just a second")."""
NAMED_TIMES = {"noon": 12, "midday": 12, "midnight": 12}
DAYS = frozenset(stem(w) for w in (
    "monday tuesday wednesday thursday friday saturday sunday weekend weekday "
    "january february march april june july august september october november december"
).split())
"""Stems of day and month names ("may" is left to the capitalised-name rule: it is mostly a verb)."""
PLACES = frozenset(stem(w) for w in (
    "floor level storey aisle upstairs downstairs basement mezzanine rooftop terrace entrance exit counter "
    "desk reception lobby foyer corner room hall section department shelf wing lift elevator escalator "
    "stairs staircase checkout till"
).split())
"""Stems of words that say where something is."""
COUNTED = frozenset(stem(w) for w in (
    "year years month months week weeks day days hour hours minute minutes second seconds percent "
    "pound pounds dollar dollars euro euros cent cents penny pence mile miles kilometre kilometres metre metres "
    "meter meters foot feet people person seat seats table tables room rooms item items copy copies title titles "
    "book books member members staff employee employees shop shops store stores branch branches location "
    "locations floors time times stamp stamps"
).split())
"""Stems of what is counted: a number before one is checked together with it."""
NOT_NAMES = frozenset({"i"})
MORNING = frozenset({"morning", "am"})
LATER_IN_DAY = frozenset({"afternoon", "evening", "evenings", "night", "tonight", "pm"})
"""Capitalised words that name nothing."""


class ClaimKind(str, enum.Enum):
    NUMBER = "number"
    TIME = "time"
    PHONE = "phone"
    DAY = "day"
    NAME = "name"
    PLACE = "place"


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    text: str
    """As written in the clause."""
    keys: frozenset[str]
    """Any one of these supported makes the claim hold."""


def _number_key(value: float) -> str:
    return f"n:{int(value)}" if float(value).is_integer() else f"n:{value:g}"


def _hours(hour: int, meridiem: str | None) -> list[int]:
    """The hour on the 24-hour clock: "9 pm" → 21; "9:30" without am/pm may be either (9, 21)."""
    if meridiem:
        return [hour % 12 + (12 if meridiem.lower() == "p" else 0)]
    return [hour] if hour == 0 or hour > 12 else [hour, hour % 12 + 12]


def _time_keys(hour: int, minutes: str, meridiem: str | None) -> frozenset[str]:
    hours = _hours(hour, meridiem)
    return frozenset(f"h:{h}" if minutes == "00" else f"t:{h}:{minutes}" for h in hours)


def _digit_claims(text: str) -> tuple[list[Claim], str]:
    """Phone numbers, times and numbers in digits; returns them and the text with the phone numbers and
    times blanked out (its plain numbers are left for the word rules)."""
    found: list[Claim] = []

    def blank(match: re.Match) -> str:
        return " " * len(match.group(0))

    def phone(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) < MIN_PHONE_DIGITS:
            return match.group(0)
        found.append(Claim(ClaimKind.PHONE, match.group(0).strip(), frozenset({f"n:{digits}"})))
        return blank(match)

    def time(match: re.Match) -> str:
        hour, minutes = int(match.group(1)), match.group(2)
        if hour > 24 or int(minutes) > 59:
            return match.group(0)
        found.append(Claim(ClaimKind.TIME, match.group(0).strip(), _time_keys(hour, minutes, match.group(3))))
        return blank(match)

    def hour(match: re.Match) -> str:
        found.append(Claim(ClaimKind.TIME, match.group(0).strip(), _time_keys(int(match.group(1)), "00", match.group(2))))
        return blank(match)

    text = _PHONE.sub(phone, text)
    text = _TIME.sub(time, text)
    text = _HOUR_MERIDIEM.sub(hour, text)
    for match in _NUMBER.finditer(text):
        value = float(match.group(0).replace(",", ""))
        found.append(Claim(ClaimKind.NUMBER, match.group(0), frozenset({_number_key(value)})))
    return found, text


def _word_number_claims(plain: list[str], ambiguous_too: bool) -> list[Claim]:
    """Numbers in words: "twenty five", "two hundred", "third"; "first"/"second" before a place word
    (always, with ``ambiguous_too``: a source text may support them)."""
    found: list[Claim] = []
    i = 0
    while i < len(plain):
        word = plain[i]
        following = plain[i + 1] if i + 1 < len(plain) else ""
        if word in AMBIGUOUS_ORDINALS and (ambiguous_too or stem(following) in PLACES):
            found.append(Claim(ClaimKind.NUMBER, word, frozenset({f"n:{AMBIGUOUS_ORDINALS[word]}"})))
        elif word in ORDINALS or word in NAMED_TIMES:
            found.append(Claim(ClaimKind.NUMBER, word, frozenset({f"n:{ORDINALS.get(word) or NAMED_TIMES[word]}"})))
        elif word in UNITS or word in TENS:
            start, value = i, UNITS.get(word, TENS.get(word, 0))
            if word in TENS and following in UNITS and UNITS[following] < 10:
                value += UNITS[following]
                i += 1
            while i + 1 < len(plain) and plain[i + 1] in SCALES:
                value *= SCALES[plain[i + 1]]
                i += 1
            found.append(Claim(ClaimKind.NUMBER, " ".join(plain[start: i + 1]), frozenset({f"n:{value}"})))
        i += 1
    return found


def _capitalised_claims(text: str) -> list[Claim]:
    """Names: capitalised words inside a sentence; a sentence's first word only with a capitalised next."""
    tokens = list(_WORD.finditer(text))
    found: list[Claim] = []
    for i, token in enumerate(tokens):
        word = token.group(0)
        if not word[0].isupper() or word.lower().split("'")[0].split("’")[0] in NOT_NAMES:
            continue
        starts_sentence = i == 0 or bool(_SENTENCE_START.search(text[: token.start()]))
        if starts_sentence:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            adjacent = following is not None and not text[token.end(): following.start()].strip()
            if not (adjacent and following.group(0)[0].isupper()):
                continue
        found.append(Claim(ClaimKind.NAME, word, frozenset(f"w:{stem(w)}" for w in words(word, 8))))
    return [c for c in found if c.keys]


def _token_number(token: str) -> int | None:
    """The number a single word stands for ("3", "3rd", "third", "three", "second"), or None."""
    digits = token[:-2] if token.endswith(("st", "nd", "rd", "th")) else token
    if digits.isdigit():
        return int(digits)
    return UNITS.get(token) or ORDINALS.get(token) or AMBIGUOUS_ORDINALS.get(token)


def _quantities(plain: list[str]) -> list[Claim]:
    """A number right before something counted: "12 years", "twenty five minutes", "two minute walk"."""
    found = []
    i = 0
    while i < len(plain):
        start, word = i, plain[i]
        value = int(word) if word.isdigit() else UNITS.get(word, TENS.get(word))
        if value is not None and word in TENS and i + 1 < len(plain) and UNITS.get(plain[i + 1], 10) < 10:
            value += UNITS[plain[i + 1]]
            i += 1
        if value is not None and i + 1 < len(plain) and stem(plain[i + 1]) in COUNTED:
            counted = stem(plain[i + 1])
            found.append(Claim(ClaimKind.NUMBER, " ".join(plain[start: i + 2]), frozenset({f"q:{value}:{counted}"})))
        i += 1
    return found


def _numbered_places(plain: list[str]) -> list[Claim]:
    """A place word with a number before or after it: "second floor", "2nd floor", "aisle 5"."""
    found = []
    for i, word in enumerate(plain):
        place = stem(word)
        if place not in PLACES:
            continue
        for j in (i - 1, i + 1):
            number = _token_number(plain[j]) if 0 <= j < len(plain) else None
            if number is not None:
                pair = " ".join(plain[min(i, j): max(i, j) + 1])
                found.append(Claim(ClaimKind.PLACE, pair, frozenset({f"p:{number}:{place}"})))
    return found


def claims(text: str) -> list[Claim]:
    """Every checkable claim in ``text`` (a clause the LLM wrote)."""
    found, rest = _digit_claims(text)
    plain = words(rest, MAX_TEXT_WORDS)
    found += _word_number_claims(plain, ambiguous_too=False)
    found += [
        Claim(ClaimKind.DAY if stem(w) in DAYS else ClaimKind.PLACE, w, frozenset({f"w:{stem(w)}"}))
        for w in plain if stem(w) in DAYS or stem(w) in PLACES
    ]
    found += _capitalised_claims(rest)
    found += _numbered_places(words(text, MAX_TEXT_WORDS))
    found += _quantities(words(text, MAX_TEXT_WORDS))
    return found


def _bare_hours(plain: list[str]) -> set[str]:
    """A source's hours said without am/pm ("open at 9 in the morning", "at 7"), as hour keys: the
    part of the day that follows decides, else both readings."""
    keys: set[str] = set()
    for i, word in enumerate(plain):
        hour = int(word) if word.isdigit() else UNITS.get(word)
        if hour is None or not 1 <= hour <= 12:
            continue
        after = set(plain[i + 1: i + 4])
        if after & MORNING:
            keys.add(f"h:{hour % 12}")
        elif after & LATER_IN_DAY:
            keys.add(f"h:{hour % 12 + 12}")
        else:
            keys |= {f"h:{h}" for h in _hours(hour, None)}
    return keys


def _time_parts(key: str) -> set[str]:
    """The numbers a time key also supports: "h:21" → 21 and 9; "t:9:30" → 9, 30 (and 21)."""
    if not key.startswith(("h:", "t:")):
        return set()
    hour, *minutes = (int(part) for part in key[2:].split(":"))
    return {f"n:{hour}", f"n:{hour % 12 or 12}", *(f"n:{m}" for m in minutes)}


def supported_keys(texts: Iterable[str]) -> frozenset[str]:
    """Every key the ``texts`` support: each word's stem, each number, time and phone number in them
    (a time's hour and minutes also as numbers, so "nine thirty" holds against "9:30")."""
    keys: set[str] = set()
    for text in texts:
        found, rest = _digit_claims(text)
        found += _word_number_claims(words(rest, MAX_TEXT_WORDS), ambiguous_too=True)
        plain = words(text, MAX_TEXT_WORDS)
        times = {key for claim in found for key in claim.keys} | _bare_hours(words(rest, MAX_TEXT_WORDS))
        keys |= times | {part for key in times for part in _time_parts(key)}
        keys |= {f"w:{stem(w)}" for w in plain}
        keys |= {key for claim in _numbered_places(plain) + _quantities(plain) for key in claim.keys}
    return frozenset(keys)
