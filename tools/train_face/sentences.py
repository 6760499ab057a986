"""A seeded generator of varied English sentences for the face-engine corpus.

Templates with word slots give statements, questions, exclamations, lists, numbers, times and
prices, so the voice speaks with many rhythms and the corpus holds every English phoneme often,
including plenty of p, b and m. The same seed always gives the same sentences.
"""
from __future__ import annotations

import random

WORDS: dict[str, list[str]] = {
    "name": ["Bob", "Pam", "Maya", "Peter", "Emma", "Ben", "Molly", "Paul", "Amir", "Sophie", "Omar",
             "Judy", "Theo", "Ivy", "Walter", "Chloe", "Hugo", "Zara", "Liam", "Ruth", "Oscar", "Nina"],
    "place": ["the museum", "the bookshop", "the station", "the library", "the harbour", "the bakery",
              "the main entrance", "the gift shop", "the cafe", "the garden", "platform nine", "the bridge",
              "the map room", "the lobby", "the north wing", "the playground", "the box office"],
    "thing": ["umbrella", "ticket", "map", "book", "bottle of water", "booklet", "parcel", "bicycle",
              "phone charger", "program", "membership card", "backpack", "wheelchair", "pram", "puzzle",
              "postcard", "coffee", "sandwich", "jigsaw", "blue scarf", "violin", "orange juice"],
    "adj": ["beautiful", "quiet", "busy", "bright", "warm", "peaceful", "huge", "tiny", "famous",
            "modern", "old", "broad", "smooth", "purple", "cheerful", "breathtaking", "empty", "amazing"],
    "verb": ["open", "close", "move", "begin", "stop", "meet", "pay", "book", "borrow", "bring", "buy",
             "visit", "wait", "explore", "choose", "remember", "measure", "judge", "enjoy", "thank"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "today",
            "tomorrow", "this evening", "next week", "every morning"],
    "adverb": ["quickly", "slowly", "happily", "probably", "maybe", "usually", "perhaps", "always",
               "rarely", "obviously", "politely"],
}

TEMPLATES: list[str] = [
    "{name} met {name2} by {place}.",
    "Where is {place}?",
    "Could you tell me where {place} is, please?",
    "The {thing} is next to {place}.",
    "We {verb} at {time} on {day}.",
    "Is {place} open on {day}?",
    "{name} paid {price} for a {adj} {thing}.",
    "Please {verb} the {thing} before {time}!",
    "Oh, that's {adj}!",
    "Tickets cost {price}, or {price2} for children.",
    "My {thing}, your {thing2}, and {name}'s {thing3}.",
    "Hmm... I'm not sure, but {place} might be {adj} {day}.",
    "{name} {adverb} said: \"{verb} the {thing}.\"",
    "Room {number} is on floor {small}; take the lift.",
    "Bob met Pam by the map.",
    "Why would {name} {verb} the {adj} {thing}?",
    "There are {number} {adj} books in {place}.",
    "Yes! {name} found the {thing} at {place}.",
    "No, the {thing} isn't here; try {place}.",
    "From {time} to {time2}, {place} is {adj}.",
    "Do you have a {thing}, a {thing2}, or a {thing3}?",
    "Welcome to {place}. My name is {name}, how can I help you?",
    "The bus leaves at {time}, from stop number {small}.",
    "Thank you, {name}. Have a {adj} day!",
    "About {number} people visit {place} on {day}.",
    "Mmm, the {thing} from {place} smells wonderful.",
    "Put the {thing} in the box, behind the purple pillow.",
    "Measure twice, cut once; that's what {name} always says.",
]

NUMBERS = ["two", "3", "7", "12", "19", "25", "42", "68", "100", "250", "1,500", "2024", "99", "seventy"]
SMALL = ["one", "2", "3", "four", "5", "6", "eight", "9"]
TIMES = ["9 a.m.", "10:30", "noon", "half past two", "5 p.m.", "8 o'clock", "midnight", "a quarter to six",
         "7:45", "6 in the evening"]
PRICES = ["$5", "£12.50", "three pounds", "$42.99", "9 euros", "fifty cents", "$100", "twenty dollars"]


def _fill(template: str, rng: random.Random) -> str:
    values: dict[str, str] = {}
    for key, words in WORDS.items():
        for suffix in ("", "2", "3"):
            values[key + suffix] = rng.choice(words)
    for suffix in ("", "2"):
        values["time" + suffix] = rng.choice(TIMES)
        values["price" + suffix] = rng.choice(PRICES)
    values["number"] = rng.choice(NUMBERS)
    values["small"] = rng.choice(SMALL)
    return template.format(**values)


def generate(count: int, seed: int) -> list[str]:
    """``count`` distinct utterances of one to three sentences, the same for the same seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    result: list[str] = []
    attempts = 0
    while len(result) < count and attempts < count * 50:
        attempts += 1
        parts = [_fill(rng.choice(TEMPLATES), rng) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
        text = " ".join(parts)
        text = text[0].upper() + text[1:]
        if text not in seen:
            seen.add(text)
            result.append(text)
    return result
