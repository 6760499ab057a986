"""The sections of what the avatar must and must not say: emergencies answered first, and the guard on
everything the LLM writes."""
from __future__ import annotations

import string

from pydantic import Field, field_validator, model_validator

from .base import Section, TextList, no_blank_items


SAFETY_PLACEHOLDERS = ("emergency_number", "staff_place")
"""The names an emergency answer may fill in: ``{emergency_number}``, ``{staff_place}``."""


class SafetyIntent(Section):
    name: str = Field(min_length=1)
    """A short name for the emergency ("medical"), for the log."""
    examples: TextList = Field(min_length=1)
    """Ways visitors say it ("chest pain", "someone collapsed"); matched before the venue knowledge."""
    answer: str = Field(min_length=1)
    """Spoken as written, with ``{emergency_number}`` and ``{staff_place}`` filled in."""

    @field_validator("answer")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:  # an unpaired brace
            raise ValueError(f"not a valid template: {exc}") from None
        unknown = sorted(names - set(SAFETY_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; expected one of {list(SAFETY_PLACEHOLDERS)}")
        return value.strip()


_CALL_AND_STAFF = "Please call {emergency_number} now, and ask any member of staff to help; you can find staff at {staff_place}."
DEFAULT_SAFETY_INTENTS = (
    SafetyIntent(
        name="medical",
        examples=[
            "chest pain", "chest hurts", "heart attack", "collapsed", "feel faint", "fainted", "passed out", "fell down and", "not moving",
            "can not breathe", "struggling to breathe", "not breathing", "bleeding", "badly hurt", "injured",
            "seizure", "choking", "unconscious", "call an ambulance", "stroke", "allergic reaction",
            "medical emergency", "has fallen", "fallen over", "fell over", "hit his head", "hit her head", "hit my head",
            "broken leg", "broken arm", "is very ill", "feels very ill", "heart is racing", "diabetic", "overdose",
            "need a doctor", "needs a doctor",
            "not getting up", "can not get up", "looks pale", "clutching his chest",
            "clutching her chest", "clutching my chest", "cut his hand", "cut her hand", "cut my hand", "badly cut",
            "cut himself", "cut herself", "cut myself", "feel dizzy", "feels dizzy", "heart is pounding",
        ],
        answer="This sounds like a medical emergency. " + _CALL_AND_STAFF + " I can't give medical advice.",
    ),
    SafetyIntent(
        name="fire",
        examples=[
            "there is a fire", "on fire", "see smoke", "smell smoke", "smells of smoke", "something is burning",
            "smell burning", "fire in the", "flames", "smoke coming", "full of smoke", "fire alarm is going off",
            "smell gas", "smells of gas", "smell of gas", "gas leak", "leaking gas",
            "caught fire", "catching fire", "sparks coming out", "sparks from", "some smoke",
        ],
        answer="If there is a fire, smoke or a smell of gas, leave the building by the nearest exit and call {emergency_number}. "
               "Tell a member of staff at {staff_place}.",
    ),
    SafetyIntent(
        name="lost child",
        examples=[
            "lost my child", "lost my son", "lost my daughter", "lost my kid", "can not find my child",
            "can not find my son", "can not find my daughter", "can not find my kid", "child is missing",
            "son is missing", "daughter is missing", "kid is missing", "boy is missing", "girl is missing",
            "child is lost", "lost child", "lost little boy",
            "lost little girl", "found a lost child", "wandered off", "has run off", "ran off", "went missing",
            "gone missing", "can not see my son", "can not see my daughter", "can not see my child",
            "can not find her mum", "can not find his mum", "can not find her dad", "can not find his dad",
            "can not find their parents", "child on her own", "child on his own", "crying on her own", "crying on his own",
        ],
        answer="Please go to a member of staff at {staff_place} right away: they will help you find them and can "
               "alert the whole venue. If you need to, call {emergency_number}.",
    ),
    SafetyIntent(
        name="unsafe",
        examples=[
            "feel unsafe", "do not feel safe", "following me", "followed me", "threatened me",
            "threatening me", "someone attacked me", "harassing me", "i am scared", "i am in danger",
            "has a weapon", "has a knife", "has a gun", "call the police", "grabbed my bag", "stole my", "stolen",
            "pickpocket", "robbed", "mugged", "threatening the staff", "threatening people", "shouting and threatening",
            "attacking", "a fight", "fighting",
            "with a knife", "with a gun", "with a weapon", "being aggressive", "getting aggressive",
            "aggressive customer", "aggressive and shouting",
        ],
        answer="Your safety comes first. Go to a member of staff at {staff_place}, stay where there are people, "
               "and call {emergency_number} if you are in danger.",
    ),
)
"""Emergencies any venue may meet: a medical emergency (a fall, someone who does not get up, a bad cut, dizziness
too), fire, smoke, sparks or gas, a lost child (one who wandered off too), feeling unsafe (theft, threats to staff,
an aggressive person or a weapon too)."""


class SafetyConfig(Section):
    emergency_number: str = Field(default="911", min_length=1)
    """The local emergency telephone number, as it should be said ("911"; "112" in Europe)."""
    staff_place: str = Field(default="the main entrance", min_length=1)
    """Where visitors find staff, as a phrase after "at" ("the information desk")."""
    intents: list[SafetyIntent] = list(DEFAULT_SAFETY_INTENTS)
    """The emergencies recognised before anything else and answered as written, never by the LLM.
    Setting this list replaces the defaults."""
    semantic_score: float = Field(default=0.6, gt=0.0, le=1.0)
    """With a sentence embedder: a question at least this similar to an example is that emergency."""
    venue_floor: float = Field(default=0.35, gt=0.0, le=1.0)
    """With a sentence embedder and the venue's texts: a question at least this similar to an example,
    and ``venue_margin`` closer to it than to any of the venue's entry questions and fact lines, is that
    emergency too (a visitor's emergency is far from everything the venue answers)."""
    venue_margin: float = Field(default=0.2, gt=0.0, le=1.0)
    """How much closer (in cosine) to an emergency's example than to the venue's closest text a question
    must be for ``venue_floor`` to apply."""


    @model_validator(mode="after")
    def _venue_floor_below_the_score(self) -> "SafetyConfig":
        if self.venue_floor >= self.semantic_score:
            raise ValueError(f"venue_floor ({self.venue_floor}) must be below semantic_score ({self.semantic_score}): "
                             "at or above it, matching relative to the venue does nothing")
        return self


DEFAULT_BLOCKED_WORDS = ("damn", "shit", "fuck", "bitch", "bastard", "crap", "idiot", "stupid", "moron", "dumb", "shut up")
DEFAULT_BLOCKED_TOPICS = {
    "politics": ["politics", "political", "election", "vote", "voting", "president", "prime minister",
                 "government", "parliament", "democrat", "republican", "senator", "political party"],
}


class GuardConfig(Section):
    enabled: bool = True
    """Check every clause the LLM writes before it is spoken (numbers, times, days, names and places must
    be in the venue knowledge, the persona or the question)."""
    blocked_words: TextList = list(DEFAULT_BLOCKED_WORDS)
    """Words and phrases the avatar never says (swearing, insults); a clause with one is not spoken."""
    blocked_topics: dict[str, list[str]] = {k: list(v) for k, v in DEFAULT_BLOCKED_TOPICS.items()}
    """Topic → words that mark it (politics, competitors' names); a clause on one is not spoken.
    Setting this table replaces the defaults."""
    instructions_overlap: float = Field(default=0.5, gt=0.0, le=1.0)
    """A clause with at least this share of its word pairs from the system prompt (and some only the
    instructions have) is not spoken: the LLM is reading its instructions out."""

    @field_validator("blocked_topics")
    @classmethod
    def _topic_words_not_blank(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {topic: no_blank_items(words) for topic, words in value.items()}

