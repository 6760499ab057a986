"""A seeded generator of varied English sentences for the face-engine corpus.

Templates with word slots give statements, questions, exclamations, lists, numbers, times and
prices, so the voice speaks with many rhythms and the corpus holds every English phoneme often,
including plenty of p, b and m; sentences of made-up words put the phonemes in many more contexts.
The same seed always gives the same sentences. The held-out evaluation uses ``HELD_OUT``: ordinary
sentences written for it, from none of these templates.
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
    "noun": ["apple", "table", "window", "garden", "mother", "father", "problem", "morning", "evening",
             "number", "member", "summer", "winter", "mountain", "river", "picture", "kitchen", "bottle",
             "button", "pocket", "rabbit", "monkey", "people", "teacher", "doctor", "baby", "family",
             "money", "market", "airport", "hospital", "camera", "computer", "keyboard", "blanket",
             "pepper", "butter", "bubble", "puppy", "hamburger", "jumper", "lamp", "stamp", "chimney",
             "thumb", "climber", "album", "symbol", "carpet", "plumber", "robot", "opera", "umpire",
             "breakfast", "dinner", "question", "answer", "journey", "weather", "feather", "voice",
             "choice", "shoe", "cheese", "juice", "ocean", "nature", "future", "treasure", "village",
             "island", "engine", "program", "moment", "company", "memory", "museum", "tomato", "potato"],
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
    "The {noun} and the {noun2} are {adverb} {adj}.",
    "Have you seen my {noun}? I left it by the {noun2}.",
    "{name}'s {noun} was {adj}, but the {noun2} was even better.",
    "In the {noun}, a {adj} {noun2} waited for the {noun3}.",
    "Every {noun} needs a {noun2}, {adverb}.",
    "Who put a {noun} on top of the {noun2}?",
    "I think the {adj} {noun} belongs to {name}.",
    "Oh no! The {noun} fell into the {noun2}.",
]

NUMBERS = ["two", "3", "7", "12", "19", "25", "42", "68", "100", "250", "1,500", "2024", "99", "seventy"]
SMALL = ["one", "2", "3", "four", "5", "6", "eight", "9"]
TIMES = ["9 a.m.", "10:30", "noon", "half past two", "5 p.m.", "8 o'clock", "midnight", "a quarter to six",
         "7:45", "6 in the evening"]
PRICES = ["$5", "£12.50", "three pounds", "$42.99", "9 euros", "fifty cents", "$100", "twenty dollars"]


# Made-up words, spoken by espeak-ng's letter-to-sound rules: they put phonemes in contexts that the
# templates' vocabulary never does, so the network learns sounds rather than a list of words.
ONSETS = ["b", "p", "m", "t", "d", "k", "g", "f", "v", "s", "z", "sh", "ch", "j", "l", "r", "w", "h", "n",
          "th", "bl", "pr", "st", "tr", "sp", "br", "pl", "gr", "cl", "sm", "y", "wh", "", ""]
NUCLEI = ["a", "e", "i", "o", "u", "ee", "oo", "ay", "ow", "oi", "ar", "er", "or", "ie", "oa", "au", "ea"]
CODAS = ["", "", "", "m", "p", "b", "n", "t", "d", "k", "s", "l", "r", "mp", "nd", "st", "ng", "ck", "sh",
         "th", "mb", "ps", "bs", "ms", "ft", "lm", "rb"]
FREE_TEMPLATES = ["{w} {w} {w}.", "{w}, {w} {w} {w}?", "{w} {w}! {w} {w} {w}.", "{w} {w} {w} {w} {w}.",
                  "The {w} {w} {w} a {w}.", "Is it {w} or {w}?", "{w}; {w} {w}, {w}."]


def pseudo_word(rng: random.Random) -> str:
    syllables = rng.choice((1, 1, 2, 2, 3))
    return "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(syllables)) or "ba"


def _free(rng: random.Random) -> str:
    template = rng.choice(FREE_TEMPLATES)
    while "{w}" in template:
        template = template.replace("{w}", pseudo_word(rng), 1)
    return template


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
        parts = [_free(rng) if rng.random() < 0.4 else _fill(rng.choice(TEMPLATES), rng)
                 for _ in range(rng.choice((1, 1, 2, 2, 3)))]
        text = " ".join(parts)
        text = text[0].upper() + text[1:]
        if text not in seen:
            seen.add(text)
            result.append(text)
    return result


HELD_OUT: list[str] = [
    "Maybe the plumber brought a broom and a mop to the pub.",
    "A famous poem about Bombay was printed in a small paperback.",
    "Honestly, nobody expected the orchestra to arrive before lunch.",
    "Would you like a map of the upper gallery?",
    "The exhibition of impressionist paintings closes in March.",
    "Please remember to switch off your mobile phone during the performance.",
    "Our cafeteria serves soup, sandwiches and apple pie until four.",
    "The lift beside the ramp goes up to the rooftop terrace.",
    "Lost property is kept at the information desk for thirty days.",
    "Children under five may enter free of charge.",
    "Photography without flash is permitted in most rooms.",
    "Between ten and eleven the museum is quieter than usual.",
    "Which platform does the express train to Birmingham leave from?",
    "I'm afraid the observatory is closed for maintenance this week.",
    "A guided tour begins every hour at the bottom of the main stairs.",
    "Bring a jumper; the basement rooms can be chilly.",
    "The membership programme offers unlimited visits and priority booking.",
    "Wheelchairs and pushchairs can be borrowed at the cloakroom.",
    "Hmm, let me think about that for a moment.",
    "Absolutely! The premiere starts at seven fifteen.",
    "The bamboo umbrella belongs to my brother Jim.",
    "Emergency exits are marked with green signs above the doors.",
    "The puppet theatre performs on Saturday mornings at half past nine.",
    "Public transport stops right outside, opposite the pharmacy.",
    "Sorry, could you repeat the question, please?",
    "Amber, jasmine and pomegranate perfumes are sold upstairs.",
    "The old bridge was built in seventeen ninety-two by a Swiss engineer.",
    "Pick up your printed tickets from the machine by the window.",
    "My favourite book in the shop is about the Amazon jungle.",
    "We whisper in the library, but the playground is for shouting.",
]
