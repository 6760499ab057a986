"""The days of the week a text names, so that a question about one day is not answered with another
day's entry.

The sentence encoder sees "Are you open on Sunday mornings?" and "Are you open on Mondays?" as nearly
the same sentence, and words alone match "open" in both. A question that names days and an entry
about days whose answer names only other days are about different things: ``conflict`` says so, and
the matcher weighs that entry down (``matcher``).

Days are read as visitors and fact sheets write them: "Sunday", "Sundays", "Mon", "Fri", "weekdays"
(Monday to Friday), "the weekend" (Saturday and Sunday), "daily" and "every day" (the whole week) and ranges ("Tuesday to Sunday", "Tuesday–Sunday",
"Monday till Friday"). A day in a holiday's name ("Easter Monday", "Good Friday") is not counted. A
text that names no day conflicts with nothing.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from .text import stem, words

WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
GROUPS = {"weekday": frozenset(range(5)), "weekend": frozenset({5, 6}), "daily": frozenset(range(7))}
"""Words that name several days."""
EVERY_DAY = ("every day", "everyday", "seven days", "7 days")
"""Phrases that name the whole week ("open every day except Mondays" is for every day it names)."""
ABBREVIATIONS = {"mon": 0, "tue": 1, "tues": 1, "thu": 3, "thur": 3, "thurs": 3, "fri": 4}
"""Short forms of a sign ("Mon–Fri"); "wed", "sat" and "sun" are words of their own and are not read."""
HOLIDAY_WORDS = frozenset({"easter", "holiday", "good", "whit", "black", "cyber", "super", "ash", "palm"})
"""Words that make the day after them part of a holiday's name ("Easter Monday", "bank holiday Monday",
"Good Friday"): a question about the holiday, not about that day of any week."""
RANGE_WORDS = frozenset({"to", "till", "until", "through", "thru"})
"""Words between two days that make a range of them ("Tuesday to Sunday")."""
MAX_WORDS = 400
"""Words of a text read for days (an entry's answer or a fact line is far shorter)."""

_DASH = re.compile(r"\s*[‐‑‒–—-]\s*")
_DAY = {day: number for number, day in enumerate(WEEK)}


def _day(word: str) -> int | None:
    day = _DAY.get(stem(word))
    return ABBREVIATIONS.get(word) if day is None else day


def _span(first: int, last: int) -> frozenset[int]:
    """The days from ``first`` to ``last``, through the week's end if need be ("Friday to Monday")."""
    return frozenset((first + step) % 7 for step in range((last - first) % 7 + 1))


def days_named(text: str) -> frozenset[int]:
    """The days of the week (0 is Monday) that ``text`` names, ranges and groups expanded."""
    plain = words(_DASH.sub(" to ", text), MAX_WORDS)
    joined = " ".join(plain)
    if any(phrase in joined for phrase in EVERY_DAY):
        return GROUPS["daily"]
    return _days_of(plain)


def _days_of(plain: Sequence[str]) -> frozenset[int]:
    found: set[int] = set()
    for at, word in enumerate(plain):
        group = GROUPS.get(stem(word))
        if group is not None:
            found |= group
            continue
        day = _day(word)
        if day is None or (at > 0 and plain[at - 1] in HOLIDAY_WORDS):
            continue
        found.add(day)
        if at + 2 < len(plain) and plain[at + 1] in RANGE_WORDS and _day(plain[at + 2]) is not None:
            found |= _span(day, _day(plain[at + 2]))
    return frozenset(found)


def conflict(question_days: frozenset[int], text_days: frozenset[int]) -> bool:
    """Both name days, and none of the same: the text answers for other days than the ones asked about."""
    return bool(question_days) and bool(text_days) and not question_days & text_days
