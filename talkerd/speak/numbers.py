"""Numbers as English words, the way the kiosk's (US English) voice says them.

Cardinals without "and" ("one hundred five"), hyphens inside tens ("twenty-three"), years in pairs
("nineteen eighty-seven", "twenty twenty-six", "nineteen oh five", "two thousand five"), digits one by
one ("zero one four seven"). Written here rather than taken from a library: it is the small part of
number reading a kiosk needs, and every rule of it is visible in the tests.
"""
from __future__ import annotations

import re

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
"""Named powers of a thousand, largest first (short scale)."""
LARGEST = 10**15
"""From here on a number is read digit by digit: nobody says such a number aloud."""
IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                      "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
NUMERAL = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
"""A numeral as printed: thousands separated by commas or not, and an optional decimal part."""


def _below_thousand(n: int) -> str:
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(f"{ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(TENS[tens] + (f"-{ONES[ones]}" if ones else ""))
    elif rest or not hundreds:
        words.append(ONES[rest])
    return " ".join(words)


def cardinal(n: int) -> str:
    """``n`` in words: 0 → "zero", 1_234 → "one thousand two hundred thirty-four"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n >= LARGEST:
        return digits(str(n))
    words = []
    for value, name in SCALES:
        count, n = divmod(n, value)
        if count:
            words.append(f"{_below_thousand(count)} {name}")
    if n or not words:
        words.append(_below_thousand(n))
    return " ".join(words)


def ordinal(n: int) -> str:
    """``n`` as an ordinal: 2 → "second", 21 → "twenty-first", 40 → "fortieth"."""
    words = cardinal(n)
    head, last = re.match(r"(.*?)([a-z]+)$", words).groups()
    if last in IRREGULAR_ORDINALS:
        return head + IRREGULAR_ORDINALS[last]
    if last.endswith("y"):
        return head + last[:-1] + "ieth"
    return head + last + "th"


def year(n: int) -> str:
    """``n`` read as a year: in pairs of digits, except the years 2000-2009 and round thousands."""
    if n < 1000 or n % 1000 == 0 or 2000 <= n < 2010:
        return cardinal(n)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{cardinal(century)} hundred"
    if rest < 10:
        return f"{cardinal(century)} oh {ONES[rest]}"
    return f"{cardinal(century)} {cardinal(rest)}"


def digits(text: str) -> str:
    """Each digit of ``text`` as a word, other characters dropped: "0147" → "zero one four seven"."""
    return " ".join(ONES[int(ch)] for ch in text if ch.isdigit())


def plural(words: str) -> str:
    """The plural of a number in words, as in "the 1980s": "nineteen eighty" → "nineteen eighties"."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith("x"):
        return words + "es"
    return words + "s"


def numeral(text: str) -> str:
    """A printed numeral in words: "1,500" → "one thousand five hundred", "2.5" → "two point five";
    one written with a leading zero ("007") is read digit by digit, as people read such codes."""
    whole, _, fraction = text.replace(",", "").partition(".")
    if len(whole) > 1 and whole.startswith("0") and not fraction:
        return digits(whole)
    words = cardinal(int(whole))
    return f"{words} point {digits(fraction)}" if fraction else words
