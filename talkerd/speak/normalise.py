"""Text as printed → text as the voice should say it, before phonemisation.

Venue facts are written the way they appear on a sign ("Call 555-0147", "$50", "Mon–Sat 9am–5:30pm",
"2nd floor", "St. Mary's"); espeak-ng reads many of them wrongly ("five hundred fifty-five dash ...",
"dollar fifty", a sentence break after "St."). ``normalise`` rewrites them in words with one table of
rules, applied in order: abbreviations and day names first (they decide where a sentence ends), then
phone numbers and dates (their digits must not be read as quantities), ranges, times, money,
percentages, units, ordinals, years and, last, plain numbers. Each rule reads what it matched, or
leaves it as written when it turns out not to be its kind (then a later rule may read it).

Only the voice hears the result: the text in logs, events and ``talkerctl`` stays as written.
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import numbers
from .reading_tables import (ALWAYS, CURRENCIES, DAYS, MONTH_NAMES, MONTHS, NUMBER_SIGNS, SCALES,
                             SENTENCE_FINAL,
                             STREET_TYPES, TITLES, TITLES_OR_STREETS, UNITS, alternation)

NUMERAL = numbers.NUMERAL.pattern
CALL_WORDS = r"call|dial|ring|phone|telephone|text|fax|extension"
"""Words after which a number is a phone number or an extension, however short ("Call 911")."""
PHONE_MIN_DIGITS = 7
"""A digit run this long, in groups, is a phone number even without a word before it."""

CODE_MIN_DIGITS = 5
"""A number this long printed without thousands separators is a code (a postcode, a password, an order
number) and is read digit by digit; quantities that large are printed with commas ("12,000")."""


@dataclass(frozen=True)
class Reading:
    """How to read what the text alone cannot tell."""

    day_first: bool = True
    """Numeric dates ("03/12/2026") are day/month/year (else month/day/year); also the spoken order."""


@dataclass(frozen=True)
class Rule:
    """One kind of printed text and how to say it."""

    name: str
    pattern: re.Pattern
    read: Callable[[re.Match, Reading], str]
    """The words for a match, or the match itself when it is not this rule's kind after all."""


def normalise(text: str, reading: Reading = Reading()) -> str:
    """``text`` with numbers, money, times, dates, abbreviations and units written out as spoken."""
    for rule in RULES:
        text = rule.pattern.sub(lambda match: rule.read(match, reading), text)
    return text


# --- helpers ---------------------------------------------------------------------------------------


def _sentence_end(match: re.Match) -> str:
    """A period for an abbreviation whose own period also ends the sentence (nothing or a capital
    follows it), so the voice still pauses there."""
    if not match.group(0).endswith("."):
        return ""
    rest = match.string[match.end():]
    return "." if not rest.strip() or re.match(r"\s+[A-Z]", rest) else ""


def _after_a_name(match: re.Match) -> bool:
    """Whether a capitalised word that does not start a sentence comes just before the match
    ("Go to Main St.", as opposed to "Visit St. Paul's")."""
    word = re.search(r"(?:^|(\S+)\s+)[A-Z][\w']*\s+$", match.string[: match.start()])
    return bool(word) and word.group(1) is not None and not word.group(1).endswith((".", "!", "?", ":"))


def _ordinal_date(day: int, month: str, year: str | None, *, day_first: bool, after_the: bool = False) -> str:
    """A date said day first ("the third of March") or month first ("March third")."""
    said_year = f" {numbers.year(int(year))}" if year else ""
    if day_first:
        return f"{'' if after_the else 'the '}{numbers.ordinal(day)} of {month}{said_year}"
    return f"{month} {numbers.ordinal(day)}{',' if year else ''}{said_year}"


def _valid(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _minutes(minute: int) -> str:
    if minute == 0:
        return ""
    return f" oh {numbers.ONES[minute]}" if minute < 10 else f" {numbers.cardinal(minute)}"


# --- the readers -----------------------------------------------------------------------------------


def _title_or_street(match: re.Match, reading: Reading) -> str:
    street, title = TITLES_OR_STREETS[match.group("abbr")]
    if _after_a_name(match) or not re.match(r"\s+[A-Z]", match.string[match.end():]):
        return street + _sentence_end(match)
    return title


def _abbreviation(match: re.Match, reading: Reading) -> str:
    written = match.group("abbr").lower()
    return ALWAYS[written] + (_sentence_end(match) if written in SENTENCE_FINAL else "")


def _day_run(match: re.Match, reading: Reading) -> str:
    words = re.sub(rf"\b({alternation(DAYS)})\b\.?", lambda m: DAYS[m.group(1)], match.group(0))
    words = re.sub(r"\s*[-–]\s*", " to ", words)
    words = re.sub(r"\s*[&/]\s*", " and ", words)
    return words + _sentence_end(match)


def _phone(match: re.Match, reading: Reading) -> str:
    number, context = match.group("number"), match.group("context") or ""
    groups = re.findall(r"\d+", number)
    count = sum(len(group) for group in groups)
    marked = bool(context) or "+" in number or "(" in number
    years = all(len(group) == 4 and 1100 <= int(group) <= 2099 for group in groups)
    if not (marked and count >= 3 or count >= PHONE_MIN_DIGITS and len(groups) > 1 and not years):
        return match.group(0)
    said = ", ".join(numbers.digits(group) for group in groups)
    return context + ("plus " if "+" in number else "") + said


def _numeric_date(match: re.Match, reading: Reading) -> str:
    first, second, year = int(match.group("a")), int(match.group("b")), int(match.group("year"))
    year += 2000 if year < 100 else 0
    orders = [(first, second), (second, first)] if reading.day_first else [(second, first), (first, second)]
    for day, month in orders:
        if _valid(year, month, day):
            return _ordinal_date(day, MONTH_NAMES[month - 1], str(year), day_first=reading.day_first)
    return match.group(0)


def _iso_date(match: re.Match, reading: Reading) -> str:
    year, month, day = (int(match.group(name)) for name in ("year", "month", "day"))
    if not _valid(year, month, day):
        return match.group(0)
    return _ordinal_date(day, MONTH_NAMES[month - 1], str(year), day_first=reading.day_first)


def _day_month(match: re.Match, reading: Reading) -> str:
    after_the = match.string[: match.start()].lower().endswith("the ")
    return _ordinal_date(int(match.group("day")), MONTHS[match.group("month")], match.group("year"),
                         day_first=True, after_the=after_the)


def _month_day(match: re.Match, reading: Reading) -> str:
    return _ordinal_date(int(match.group("day")), MONTHS[match.group("month")], match.group("year"),
                         day_first=False)


def _clock_12(match: re.Match, reading: Reading) -> str:
    hour, minute = int(match.group("h")), int(match.group("m") or 0)
    if not 1 <= hour <= 12:
        return match.group(0)
    return f"{numbers.cardinal(hour)}{_minutes(minute)} {match.group('ap').upper()}M{_sentence_end(match)}"


def _clock_24(match: re.Match, reading: Reading) -> str:
    """A text that shows a 24-hour time anywhere (a leading zero, hour 0 or 13-23) uses that clock
    throughout, and its times are said on the 12-hour clock with AM/PM, as visitors say them
    ("10:00–18:00" → "ten AM to six PM"); otherwise "9:30" and "12:00" are said as written."""
    hour, minute = int(match.group("h")), int(match.group("m"))
    if hour > 23:
        return match.group(0)
    if not any(_on_24_hour_clock(other.group("h")) for other in match.re.finditer(match.string)):
        return numbers.cardinal(hour) + (_minutes(minute) or " o'clock")
    if hour == 0 and minute == 0:
        return "midnight"
    return f"{numbers.cardinal(hour % 12 or 12)}{_minutes(minute)} {'AM' if hour < 12 else 'PM'}"


def _on_24_hour_clock(hour: str) -> bool:
    return hour.startswith("0") or 13 <= int(hour) <= 23


def _money(match: re.Match, reading: Reading) -> str:
    major, majors, minor, minors = CURRENCIES[match.group("sym")]
    whole, cents, scale = match.group("num"), match.group("cents"), match.group("scale")
    if scale:
        amount = whole + (f".{cents}" if cents else "")
        return f"{numbers.numeral(amount)} {SCALES[scale]} {majors}"
    units, hundredths = int(whole.replace(",", "")), int((cents or "0").ljust(2, "0"))
    if units == 0 and hundredths and minor:
        return f"{numbers.cardinal(hundredths)} {minor if hundredths == 1 else minors}"
    said = f"{numbers.numeral(whole)} {major if units == 1 else majors}"
    return said + (f" {numbers.cardinal(hundredths)}" if hundredths else "")


def _small_change(match: re.Match, reading: Reading) -> str:
    symbol = "£" if match.group("unit") == "p" else "$"
    _, _, minor, minors = CURRENCIES[symbol]
    amount = int(match.group("num"))
    return f"{numbers.cardinal(amount)} {minor if amount == 1 else minors}"


def _unit(match: re.Match, reading: Reading) -> str:
    singular, plural = UNITS[match.group("unit")]
    amount = match.group("num")
    return f"{numbers.numeral(amount)} {singular if amount == '1' else plural}"


def _year(match: re.Match, reading: Reading) -> str:
    said = numbers.year(int(match.group("year")))
    return numbers.plural(said) if match.group("s") else said


def _words(table: dict[str, str]) -> Callable[[re.Match, Reading], str]:
    """A reader that looks the whole match (less a trailing period) up in ``table``."""
    return lambda match, reading: table[match.group("abbr")] + _sentence_end(match)


_DAY = rf"\b(?:{alternation(DAYS)})\b\.?"
_MONTH = rf"(?P<month>{alternation(MONTHS)})\b\.?"
_YEAR = r"(?:,?\s+(?P<year>\d{4})\b)?"
_I = re.IGNORECASE

RULES: tuple[Rule, ...] = (
    Rule("titles or street names", re.compile(rf"\b(?P<abbr>{alternation(TITLES_OR_STREETS)})\b\.?"),
         _title_or_street),
    Rule("titles", re.compile(rf"\b(?P<abbr>{alternation(TITLES)})\b\.?(?=\s+[A-Z])"),
         lambda m, r: TITLES[m.group("abbr")]),
    Rule("street types", re.compile(rf"(?<=[A-Za-z] )(?P<abbr>{alternation(STREET_TYPES)})\b\.?"),
         _words(STREET_TYPES)),
    Rule("abbreviations", re.compile(rf"(?<![\w.])(?P<abbr>{alternation(ALWAYS)})(?!\w)", _I),
         _abbreviation),
    Rule("number signs", re.compile(rf"(?<![\w.])(?:{alternation(NUMBER_SIGNS)})\s?(?=\d)", _I),
         lambda m, r: "number "),
    Rule("days in a range or list", re.compile(rf"{_DAY}(?:\s*(?:[-–,&/]|\s(?:to|and|through)\s)\s*{_DAY})+"),
         _day_run),
    Rule("a day before a time", re.compile(rf"\b(?P<abbr>{alternation(DAYS)})\b(?:\.|(?=:|\s*\d))"),
         _words(DAYS)),
    Rule("ISO dates", re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b"), _iso_date),
    Rule("numeric dates", re.compile(r"\b(?P<a>\d{1,2})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})\b"),
         _numeric_date),
    Rule("day month", re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}{_YEAR}"), _day_month),
    Rule("month day", re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b{_YEAR}"), _month_day),
    Rule("phone numbers", re.compile(
        rf"(?P<context>\b(?:{CALL_WORDS})\b(?:\s+(?:us|me|them))?(?:\s+(?:on|at))?\s*:?\s*)?"
        r"(?<![\w.,/:+])(?P<number>(?:\+\s?\d{1,3}[ .-]?)?(?:\(\d{1,5}\)\s?)?\d{1,5}(?:[ .-]\d{1,5})*)"
        r"(?![\w/:]|[.,]\d)", _I), _phone),
    Rule("ranges", re.compile(r"(?:(?<=\d)|(?<=[ap]m)|(?<=[AP]M)|(?<=m\.)|(?<=M\.))\s*[-–]\s*(?=[\d$£€¥])"
                              r"|(?<=\w)–(?=\w)"), lambda m, r: " to "),
    Rule("minus signs", re.compile(r"(?:(?<=\s)|^)-(?=\d)"), lambda m, r: "minus "),
    Rule("12-hour times", re.compile(r"\b(?P<h>\d{1,2})(?:[:.](?P<m>[0-5]\d))?\s?(?P<ap>[ap])\.?m\b\.?", _I),
         _clock_12),
    Rule("24-hour times", re.compile(r"(?<![\d:.])(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?![\d:])"), _clock_24),
    Rule("money", re.compile(rf"(?P<sym>{alternation(CURRENCIES)})\s?(?P<num>\d{{1,3}}(?:,\d{{3}})+|\d+)"
                             rf"(?:\.(?P<cents>\d{{1,2}})(?!\d))?(?:\s?(?P<scale>{alternation(SCALES)})\b)?"), _money),
    Rule("pence and cents", re.compile(r"\b(?P<num>\d+)(?:(?P<unit>[pc])\b|\s?¢)"), _small_change),
    Rule("percentages", re.compile(rf"(?P<num>{NUMERAL})\s?%"),
         lambda m, r: f"{numbers.numeral(m.group('num'))} percent"),
    Rule("units", re.compile(rf"(?<![\w.,])(?P<num>{NUMERAL})\s?(?P<unit>{alternation(UNITS)})(?![\w/])"), _unit),
    Rule("ordinals", re.compile(r"\b(?P<num>\d+)(?:st|nd|rd|th)\b"),
         lambda m, r: numbers.ordinal(int(m.group("num")))),
    Rule("years", re.compile(r"(?<![\w.,])(?P<year>1[1-9]\d\d|20\d\d)(?P<s>s)?(?!\w|[.,]\d)"), _year),
    Rule("codes", re.compile(rf"(?<![\w.,])\d{{{CODE_MIN_DIGITS},}}(?!\w|[.,]\d)"),
         lambda m, r: numbers.digits(m.group(0))),
    Rule("numbers", re.compile(rf"(?<![\w.,])(?:{NUMERAL})(?!\w|[.,]\d)"), lambda m, r: numbers.numeral(m.group(0))),
)
