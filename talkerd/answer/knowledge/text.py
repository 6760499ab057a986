"""Turning a visitor's words into comparable terms: normalisation, contractions, stop words, stemming.

Questions arrive as recogniser output (lower case, no punctuation, sometimes a wrong word) or as typed
text (capitals, punctuation, accents, curly apostrophes). Both are reduced to the same plain word list
so that the matcher and the cue tables see one form.
"""
from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")
_INNER_APOSTROPHE = re.compile(r"(?<=[a-z])['\u2019\u2018`](?=[a-z])")

MAX_WORD_CHARS = 32
"""Characters looked at per allowed word: a question is cut before any work is done on it."""

CONTRACTIONS: dict[str, tuple[str, ...]] = {
    "whats": ("what", "is"),
    "wheres": ("where", "is"),
    "whos": ("who", "is"),
    "hows": ("how", "is"),
    "whens": ("when", "is"),
    "thats": ("that", "is"),
    "theres": ("there", "is"),
    "its": ("it", "is"),
    "im": ("i", "am"),
    "ive": ("i", "have"),
    "id": ("i", "would"),
    "ill": ("i", "will"),
    "youre": ("you", "are"),
    "youve": ("you", "have"),
    "theyre": ("they", "are"),
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "cant": ("can", "not"),
    "cannot": ("can", "not"),
    "wont": ("will", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "havent": ("have", "not"),
    "wouldnt": ("would", "not"),
    "couldnt": ("could", "not"),
    "lets": ("let", "us"),
}
"""Contractions with the apostrophe already removed (typed "what's" and recognised "whats" alike)."""

STOP_WORDS = frozenset(
    """
    a an the and or but if so of to in on at by for from with about into onto over under up down out off
    as than then too very just also really actually maybe perhaps quite only even still again ever
    i me my mine myself we us our ours you your yours yourself he him his she her it its they them their
    this that these those there here what which who whom whose how why is am are was were be been being
    do does did doing done have has had having can could would should will shall may might must
    not no yes yeah yep ok okay please excuse sorry um uh uhm er erm ah oh hmm well like
    tell know want wanted need needs wonder wondering wondered let say said ask asking
    get got getting go going sell sells selling sold offer offers offering provide stock carry bring
    buy buys buying bought purchase purchased come comes coming came put keep leave leaving left
    think thought guess suppose mean
    today tonight tomorrow now currently week yesterday soon later usually normally
    exactly precisely anywhere somewhere everywhere guys folks near nearby nearest around
    price prices cost costs own grab available possible facility facilities customer customers
    anybody anyone someone somebody everyone everybody nobody yet already take takes taking took
    any some anything something thing things one ones bit lot lots much many more most
    s t d ll re ve m
    """.split()
)
"""Words that carry no topic: function words, fillers, and the verbs of asking ("do you sell …",
"can I get …"), whose object is the content. Whether a question concerns the venue at all is decided
separately, by the cue tables in ``cues``."""

STOP_STEMS = frozenset()  # filled below, once ``stem`` exists

IRREGULAR = {
    "children": "child",
    "shelves": "shelf",
    "childrens": "child",
    "kids": "kid",
    "people": "person",
    "men": "man",
    "women": "woman",
    "paid": "pay",
    "bought": "buy",
    "went": "go",
    "left": "leave",
    "lost": "lose",
    "gave": "give",
    "given": "give",
    "taken": "take",
    "took": "take",
}
"""Irregular forms the suffix rules cannot reach."""


def words(text: str, max_words: int) -> list[str]:
    """Plain lower-case ASCII words of ``text``, contractions expanded, at most ``max_words`` of them."""
    text = unicodedata.normalize("NFKD", text[: max_words * MAX_WORD_CHARS])
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _INNER_APOSTROPHE.sub("", text)
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(CONTRACTIONS.get(word, (word,)))
        if len(out) >= max_words:
            break
    return out[:max_words]


def _undouble(word: str) -> str:
    # "shopping" → "shopp" → "shop"; but keep "ll"/"ss"/"zz" ("calling" → "call").
    if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


def stem(word: str) -> str:
    """A light English stemmer: plural, -ing and -ed endings and a final e, so that open, opens,
    opening and opened meet, and close, closes, closing and closed all become "clos". Both sides of
    every comparison go through it, so its stems need only be consistent, not real words."""
    if word in IRREGULAR:
        word = IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = _undouble(word[: -len(suffix)])
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


STOP_STEMS = frozenset(stem(w) for w in STOP_WORDS if len(w) >= 5)
"""Stems of the longer stop words, so that their inflections ("meaning", "thinking") are dropped too.
Short ones are left out: their stems are those of content words ("even" ← "evening")."""


def is_stop_word(word: str) -> bool:
    return word in STOP_WORDS or stem(word) in STOP_STEMS
