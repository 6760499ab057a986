"""Text as printed → as spoken: the reading table, the number words under it, and the check on what the
real voice gets (the phoneme ids of the joe voice's espeak-ng phonemizer, and the real split TTS)."""
from __future__ import annotations

import json

import pytest

from talkerd.config import load_config
from talkerd.errors import ConfigError
from talkerd.messages import Clause, Turn, TurnSource
from talkerd.speak import numbers
from talkerd.speak.normalise import Reading, normalise
from talkerd.speak.phonemes import Phonemizer
from talkerd.speak.speech_maker import SpeechMaker
from talkerd.speak.tts import PiperTts
from tests.conftest import DEFAULT_CONFIG, MODELS, ROOT

VOICE_CONFIG = MODELS / "en_US-joe-medium.onnx.json"

# The table README.md's "How the voice reads numbers" shows: what is printed → what the voice says.
READINGS = [
    # phone numbers: digit by digit, in the groups they are printed in
    ("Call 555-0147", "Call five five five, zero one four seven"),
    ("Phone (555) 014-7321.", "Phone five five five, zero one four, seven three two one."),
    ("Call us on +44 20 7946 0958", "Call us on plus four four, two zero, seven nine four six, zero nine five eight"),
    ("Dial 911 for help", "Dial nine one one for help"),
    ("Tel. 555 0147", "telephone five five five, zero one four seven"),
    ("ext. 204", "extension two zero four"),
    # money
    ("$50", "fifty dollars"),
    ("£2.80", "two pounds eighty"),
    ("€3", "three euros"),
    ("50p", "fifty pence"),
    ("$1", "one dollar"),
    ("$0.99", "ninety-nine cents"),
    ("$1,200", "one thousand two hundred dollars"),
    ("$2.5m", "two point five million dollars"),
    ("$5–$10", "five dollars to ten dollars"),
    # times
    ("9 am", "nine AM"),
    ("9:30 a.m.", "nine thirty AM."),
    ("Opens at 9 a.m. Closes at 5 p.m. on Sundays", "Opens at nine AM. Closes at five PM on Sundays"),
    ("17:00", "five PM"),
    ("Open 10:00–18:30 daily", "Open ten AM to six thirty PM daily"),
    ("9:30", "nine thirty"),
    ("00:00", "midnight"),
    ("9am–5pm", "nine AM to five PM"),
    # days
    ("Mon–Sat", "Monday to Saturday"),
    ("Mon-Fri 9am-5pm, Sat 10am-4pm, Sun: closed",
     "Monday to Friday nine AM to five PM, Saturday ten AM to four PM, Sunday: closed"),
    ("Open Mon, Wed and Fri.", "Open Monday, Wednesday and Friday."),
    ("Sun cream is by the door", "Sun cream is by the door"),
    # dates
    ("3 March", "the third of March"),
    ("on the 3rd of March", "on the third of March"),
    ("March 3, 2026", "March third, twenty twenty-six"),
    ("03/12/2026", "the third of December twenty twenty-six"),
    ("12/25/2026", "the twenty-fifth of December twenty twenty-six"),
    ("2026-03-12", "the twelfth of March twenty twenty-six"),
    # ordinals, abbreviations
    ("2nd floor", "second floor"),
    ("The 21st and 22nd", "The twenty-first and twenty-second"),
    ("St. Mary's Church", "Saint Mary's Church"),
    ("Go to Main St.", "Go to Main Street."),
    ("Dr. Patel", "Doctor Patel"),
    ("12 Elm Dr", "twelve Elm Drive"),
    ("approx. 5 min", "approximately five minutes"),
    ("cakes, tea, etc. We also", "cakes, tea, et cetera. We also"),
    ("e.g. London", "for example London"),
    ("Room No. 5", "Room number five"),
    ("No. I don't know", "No. I don't know"),
    ("open 24/7", "open twenty-four seven"),
    # percentages, units
    ("10%", "ten percent"),
    ("2.5% off", "two point five percent off"),
    ("5 km", "five kilometers"),
    ("1 km", "one kilometer"),
    ("2 kg", "two kilograms"),
    ("10 min", "ten minutes"),
    ("20°C", "twenty degrees Celsius"),
    ("-5°C", "minus five degrees Celsius"),
    # years, plain numbers, codes
    ("1987", "nineteen eighty-seven"),
    ("the 1980s", "the nineteen eighties"),
    ("built 1887-1889", "built eighteen eighty-seven to eighteen eighty-nine"),
    ("2005", "two thousand five"),
    ("12,000 books", "twelve thousand books"),
    ("3000 seats", "three thousand seats"),
    ("3.5", "three point five"),
    ("Aisle 7", "Aisle seven"),
    ("pages 10–20", "pages ten to twenty"),
    ("Wi-Fi code 12345678", "Wi-Fi code one two three four five six seven eight"),
    ("locker 007", "locker zero zero seven"),
    # text without any of it stays as it is
    ("We are open – come in!", "We are open – come in!"),
]


@pytest.mark.parametrize(("printed", "spoken"), READINGS)
def test_printed_text_is_read_as_a_person_reads_it(printed, spoken):
    assert normalise(printed) == spoken


def test_numeric_dates_follow_the_configured_order():
    month_first = Reading(day_first=False)
    assert normalise("03/12/2026", month_first) == "March twelfth, twenty twenty-six"
    assert normalise("25/12/2026", month_first) == "December twenty-fifth, twenty twenty-six"  # valid one way only
    # no date either way: not read as one (its numbers still are)
    assert normalise("31/31/2026", month_first) == "thirty-one/thirty-one/twenty twenty-six"


def test_normalised_text_is_left_alone_the_second_time():
    for printed, _ in READINGS:
        once = normalise(printed)
        assert normalise(once) == once


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (21, "twenty-one"), (100, "one hundred"),
    (105, "one hundred five"), (999, "nine hundred ninety-nine"), (1234, "one thousand two hundred thirty-four"),
    (20_000, "twenty thousand"), (1_000_001, "one million one"),
    (123_456_789, "one hundred twenty-three million four hundred fifty-six thousand seven hundred eighty-nine"),
])
def test_cardinals(n, words):
    assert numbers.cardinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth"), (8, "eighth"), (9, "ninth"),
    (12, "twelfth"), (20, "twentieth"), (23, "twenty-third"), (40, "fortieth"), (101, "one hundred first"),
])
def test_ordinals(n, words):
    assert numbers.ordinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1066, "ten sixty-six"), (1100, "eleven hundred"), (1905, "nineteen oh five"), (1987, "nineteen eighty-seven"),
    (2000, "two thousand"), (2009, "two thousand nine"), (2010, "twenty ten"), (2026, "twenty twenty-six"),
])
def test_years(n, words):
    assert numbers.year(n) == words


def test_numbers_too_long_to_say_are_read_digit_by_digit():
    assert numbers.cardinal(10**15) == numbers.digits("1" + "0" * 15)


# --- what the voice gets --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phonemizer():
    voice = json.loads(VOICE_CONFIG.read_text())
    return Phonemizer(voice["espeak"]["voice"], voice["phoneme_id_map"])


def ids(phonemizer: Phonemizer, text: str) -> list[tuple[int, ...]]:
    return [sentence.ids for sentence in phonemizer.sentences(text)]


@pytest.mark.parametrize(("printed", "said"), [
    ("Call 555-0147", "Call five five five, zero one four seven"),
    ("$50", "fifty dollars"),
])
def test_the_voice_gets_the_phonemes_of_the_words(phonemizer, printed, said):
    assert ids(phonemizer, normalise(printed)) == ids(phonemizer, said)
    # and espeak-ng alone reads the printed form otherwise ("five hundred fifty-five", "dollar fifty")
    assert ids(phonemizer, printed) != ids(phonemizer, said)


@pytest.fixture(scope="module")
def tts_pair():
    """The real split TTS twice: reading printed text (the default) and with ``tts.normalise = false``."""
    config = load_config(DEFAULT_CONFIG)
    reading = PiperTts.load(config.tts, config.engines)
    literal = PiperTts.load(config.tts.model_copy(update={"normalise": False}), config.engines)
    yield reading, literal
    reading.close()
    literal.close()


def test_the_tts_reads_printed_text_only_when_configured(tts_pair, phonemizer):
    reading, literal = tts_pair
    printed, said = "Call 555-0147, from 9 am.", "Call five five five, zero one four seven, from nine AM."
    assert [s.ids for s in reading.sentences(printed)] == ids(phonemizer, said)
    assert [s.ids for s in literal.sentences(printed)] == ids(phonemizer, printed)
    # the timed phonemes (text engine run, no variation) are those of the words
    assert reading.phonemes_for(printed) == reading.phonemes_for(said)


def test_the_spoken_chunks_keep_the_text_as_written(tts_pair):
    reading, _ = tts_pair
    config = load_config(DEFAULT_CONFIG)
    maker = SpeechMaker(reading, None, config.face, reading.sample_rate, config.render.fps)
    written = "Our number is 555-0147."
    chunks = list(maker.from_clause(Clause(Turn(TurnSource.SAY, written), written, 0)))
    assert chunks and all(chunk.text == written for chunk in chunks)


def test_a_bad_date_order_names_the_field(tmp_path):
    text = DEFAULT_CONFIG.read_text().replace('"../', f'"{ROOT}/')
    path = tmp_path / "talkerd.toml"
    assert 'date_order = "day_first"' in text, "the default config no longer sets tts.date_order"
    path.write_text(text.replace('date_order = "day_first"', 'date_order = "year_first"'))
    with pytest.raises(ConfigError, match=r"tts\.date_order"):
        load_config(path)
    assert load_config(DEFAULT_CONFIG).tts.normalise is True
