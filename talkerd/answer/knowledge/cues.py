"""Is a question small talk, or about the venue? Two tables, applied to normalised words.

The rule (documented in the README and tested):

1. Every small-talk phrase in ``SMALL_TALK`` is cut out of the question ("hi there, where are the
   toilets" → "where are the toilets"). If nothing with a topic is left, the question is small talk.
2. What is left is matched against the venue knowledge (``index``); a good enough match is answered
   from it, whatever the wording.
3. Otherwise, if what is left contains a venue cue — a phrase of ``VENUE_CUES``, a word of the
   integrator's ``knowledge.venue_cues``, or a word of any entry's topic or keywords — it is a venue
   question the knowledge does not cover, and gets the honest "I don't know". Anything else is
   conversation for the language model.

Patterns are regular expressions over the normalised text: lower case ASCII words separated by single
spaces, contractions expanded ("what's" → "what is"), so "whats your name" and "What's your name?"
meet one pattern.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

SMALL_TALK: dict[str, tuple[str, ...]] = {
    "greeting": (
        r"(hello|hi|hey|hiya|howdy|greetings|good (morning|afternoon|evening|day))( there| everyone| all)?",
        r"nice to meet you( too)?",
        r"pleased to meet you",
    ),
    "thanks": (r"thank you( (very|so) much)?", r"thanks( a lot| very much)?", r"cheers", r"much appreciated"),
    "farewell": (r"good ?bye", r"bye( bye)?", r"see you( later| soon)?", r"have a (nice|good|great) day", r"good night"),
    "wellbeing": (
        r"how are you( doing)?( today)?",
        r"how is it going",
        r"how do you do",
        r"are you (ok|okay|well|alright)",
        r"what is up",
    ),
    "identity": (
        r"who are you",
        r"what is your name",
        r"what are you called",
        r"what are you",
        r"are you (a |an )?(robot|human|real|person|computer|ai|machine|alive)",
        r"where are you from",
        r"how old are you",
        r"tell me about yourself",
        r"what can you do",
        r"what do you do",
        r"can you help me",
        r"can i ask you (a |some )?questions?",
        r"my name is \w+",
    ),
    "fun": (
        r"tell me (a |another )?(joke|story|riddle)\b.*",
        r"(say|tell me) something (funny|interesting|nice)",
        r"sing (me )?(a )?song\b.*",
        r"do you like \w+.*",
        r"what is your favou?rite \w+.*",
        r"i (love|like) you",
        r"you are (funny|great|clever|smart|nice|cool|awesome|lovely|amazing|beautiful|cute)",
    ),
    "world": (r"what time is it( now)?", r"what day is it( today)?", r"what is the date( today)?", r"what is the weather\b.*"),
    "acknowledgement": (r"(ok|okay|alright|great|cool|nice|wow|perfect|brilliant|lovely|awesome|good)( then)?",),
}
"""Phrases that are conversation, not a question about the venue, by kind. A phrase must cover whole
words; the ones ending in ``.*`` take the rest of the sentence with them ("tell me a joke about books"
is not a question about books)."""

VENUE_CUES: dict[str, tuple[str, ...]] = {
    "hours": (r"open\w*", r"clos\w*", r"hours?", r"today", r"tomorrow", r"tonight", r"weekends?", r"holidays?",
              r"(mon|tues|wednes|thurs|fri|satur|sun)days?", r"christmas", r"easter"),
    "prices": (r"how much", r"prices?", r"costs?", r"charge", r"fees?", r"free", r"cheap\w*", r"expensive",
               r"discounts?", r"deals?", r"offers?", r"sales?"),
    "location": (r"where", r"address", r"directions?", r"nearest", r"nearby", r"near here", r"get (to|there|here)",
                 r"located", r"floor", r"upstairs", r"downstairs", r"entrance", r"exit"),
    "goods and services": (r"do you (have|sell|offer|do|stock|carry|take|accept|buy|rent|hire|deliver|ship)",
                           r"have you got", r"is there", r"are there", r"any \w+ here",
                           r"(can|could|may) (i|we)", r"am i allowed", r"allowed", r"book(ing)? (a|an)",
                           r"order\w*", r"reserv\w*", r"deliver\w*", r"rent\w*", r"in stock"),
    "staff": (r"manager", r"staff", r"own(s|er|ers)", r"employees?", r"someone", r"somebody", r"speak to",
              r"talk to", r"jobs?", r"hiring", r"vacanc\w*", r"work here"),
    "policies": (r"polic\w*", r"rules?", r"permitted", r"refunds?", r"return\w*", r"exchange\w*", r"complain\w*"),
    "facilities": (r"toilets?", r"bathrooms?", r"wifi", r"internet", r"parking", r"lift", r"wheelchair", r"seats?",
                   r"seating", r"charg\w+", r"cash machine", r"atm", r"lockers?", r"cloakroom"),
}
"""Phrases that make a question about the venue (hours, prices, location, goods and services, staff,
policies, facilities), by kind. Generic to any venue; a venue adds its own words through the entries'
topics and keywords and ``knowledge.venue_cues``."""


def _alternation(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(f"(?:{p})" for p in patterns) + r")(?![a-z0-9])")


_SMALL_TALK = {kind: _alternation(patterns) for kind, patterns in SMALL_TALK.items()}
_VENUE = {kind: _alternation(patterns) for kind, patterns in VENUE_CUES.items()}


def strip_small_talk(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with every small-talk phrase removed, and the kinds of small talk found."""
    found: list[str] = []
    for kind, pattern in _SMALL_TALK.items():
        text, count = pattern.subn(" ", text)
        if count:
            found.append(kind)
    return " ".join(text.split()), tuple(found)


def venue_cues(text: str) -> tuple[str, ...]:
    """The kinds of generic venue cue found in ``text``."""
    return tuple(kind for kind, pattern in _VENUE.items() if pattern.search(text))
