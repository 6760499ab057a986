"""The words behind printed symbols and abbreviations, for ``talkerd.speak.normalise``.

US English, like the voice: "kilometers", "liters" (espeak-ng stresses the British spellings oddly).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
MONTHS = {**{name: name for name in MONTH_NAMES},
          **{name[:3]: name for name in MONTH_NAMES if name != "May"}, "Sept": "September"}
"""Month names and their abbreviations, capitalised as printed, → the full name."""

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAYS = {**{name: name for name in DAY_NAMES}, **{name[:3]: name for name in DAY_NAMES},
        "Tues": "Tuesday", "Thur": "Thursday", "Thurs": "Thursday"}
"""Day names and their abbreviations → the full name. "Sat" and "Sun" are also words, so an
abbreviation is only expanded in a run of days, before a time, or with its period."""

TITLES_OR_STREETS = {"St": ("Street", "Saint"), "Dr": ("Drive", "Doctor")}
"""Abbreviations that are a street type after a name ("Main St.") and a title before one ("St. Mary's")."""
TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor", "Mt": "Mount"}
"""Titles, expanded before a capitalised name."""
STREET_TYPES = {"Rd": "Road", "Ave": "Avenue", "Blvd": "Boulevard", "Ln": "Lane", "Sq": "Square"}
"""Street types, expanded after a word."""

ALWAYS = {
    "approx.": "approximately", "approx": "approximately", "e.g.": "for example", "i.e.": "that is",
    "etc.": "et cetera", "etc": "et cetera", "vs.": "versus", "vs": "versus", "incl.": "including",
    "excl.": "excluding", "ext.": "extension", "tel.": "telephone", "24/7": "twenty-four seven",
}
"""Abbreviations with one meaning wherever they appear (lower case; matched in any case)."""
SENTENCE_FINAL = ("etc.",)
"""The abbreviations among ``ALWAYS`` that can also end a sentence (the others introduce something)."""
NUMBER_SIGNS = ("no.", "#")
"""Said "number", before a digit only ("No. 5", "#5"; not "No. I don't")."""

CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", None, None),
}
"""Currency symbol → the unit's singular and plural, and its hundredth's (None: not spoken)."""
SCALES = {"million": "million", "billion": "billion", "thousand": "thousand", "bn": "billion",
          "m": "million", "k": "thousand"}
"""Scale words after an amount of money ("$5m", "£2.5 billion")."""

UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"), "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "l": ("liter", "liters"), "L": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "h": ("hour", "hours"),
    "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "sec": ("second", "seconds"),
    "secs": ("second", "seconds"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
"""Unit symbols after a number (case matters: "mL" and "ml", never "M") → singular and plural."""


def alternation(words: Iterable[str]) -> str:
    """A regular-expression alternation of ``words``, longest first so that "km/h" wins over "km"."""
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
