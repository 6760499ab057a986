"""Text to Piper phoneme ids, and per-id durations back to timed phonemes.

Phonemes come from espeak-ng through ``piper.espeakbridge`` (the same phonemizer Piper voices are
trained with) and become ids with ``piper.phoneme_ids``. The id sequence is BOS PAD p1 PAD p2 PAD ...
pn PAD EOS, so each phoneme owns its own ids plus the PAD after it; ``timings`` groups the model's
per-id durations the same way. espeak-ng reports stress (ˈ ˌ) and length (ː) marks and combining
diacritics as phonemes of their own, each with a real duration of 70-80 ms; they are folded into the
phoneme they belong to, otherwise a mouth driven by the timings would close in the middle of a word.
"""
from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ComponentUnavailable
from ..messages import PhonemeTiming

log = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"
PREFIX_MARKS = frozenset("ˈˌ")
"""Stress marks: they precede the syllable they stress."""
SUFFIX_CATEGORIES = frozenset({"Lm", "Mn", "Sk"})
"""Unicode categories that attach to the phoneme before them: modifier letters (ː ʲ ʰ), combining
marks (U+0329 syllabic, U+0303 nasal) and modifier symbols (˞)."""
PAUSES = frozenset({BOS, EOS, PAD, ".", ",", "?", "!", ";", ":", "—", "-", "…", "(", ")", '"', "'"})
"""Entries that stand for silence: sentence start/end markers, padding and punctuation."""
SENTENCE_TERMINATORS_KEEP_SPACE = frozenset(",:;")
"""Clause terminators inside a sentence: a space follows them, as in Piper's own phonemizer."""
_LANGUAGE_SWITCH = re.compile(r"\([^)]*\)")
"""espeak-ng wraps words it reads in another language as ``(fr)...(en)``; the flags are not phonemes."""

_espeak_lock = threading.Lock()
"""espeak-ng is one global C state per process: phonemize one text at a time."""
_espeak_ready = False


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text as the voice speaks it."""

    phonemes: tuple[str, ...]
    """The phonemes (single code points, as the voice's id map has them), unknown ones removed."""
    ids: tuple[int, ...]
    """The voice's input ids: BOS PAD, each phoneme's ids followed by PAD, EOS."""
    groups: tuple[tuple[str, int], ...]
    """For each entry of the timing (BOS, each phoneme, EOS): its phoneme and how many ids it owns."""


def _espeak():
    """The espeak-ng bridge inside the piper-tts wheel, initialised once with its bundled data."""
    global _espeak_ready
    try:
        import piper
        from piper import espeakbridge
    except ImportError as exc:  # pragma: no cover - piper-tts is a hard dependency
        raise ComponentUnavailable(f"piper-tts is not installed: {exc}") from exc
    if not _espeak_ready:
        from pathlib import Path

        espeakbridge.initialize(str(Path(piper.__file__).parent / "espeak-ng-data"))
        _espeak_ready = True
    return espeakbridge


class Phonemizer:
    """Text → sentences of phoneme ids for one Piper voice."""

    def __init__(self, espeak_voice: str, id_map: Mapping[str, Sequence[int]], *, max_ids: int | None = None) -> None:
        missing = [symbol for symbol in (BOS, EOS, PAD) if symbol not in id_map]
        if missing:
            raise ComponentUnavailable(f"the voice's phoneme_id_map lacks {missing}")
        self.espeak_voice = espeak_voice
        self.id_map = {symbol: tuple(ids) for symbol, ids in id_map.items()}
        self.max_ids = max_ids
        """The most ids the text engine takes in one run; longer sentences are cut between words."""
        self._warned: set[str] = set()

    def sentences(self, text: str) -> list[Sentence]:
        """The text's sentences; an empty or whitespace-only text has none."""
        if not text or not text.strip():
            return []
        with _espeak_lock:
            bridge = _espeak()
            bridge.set_voice(self.espeak_voice)
            clauses = bridge.get_phonemes(text)
        result: list[Sentence] = []
        current: list[str] = []
        for phonemes, terminator, end_of_sentence in clauses:
            spoken = _LANGUAGE_SWITCH.sub("", phonemes) + terminator
            if terminator in SENTENCE_TERMINATORS_KEEP_SPACE:
                spoken += " "
            current.extend(unicodedata.normalize("NFD", spoken))
            if end_of_sentence:
                result.extend(self._sentence(current))
                current = []
        result.extend(self._sentence(current))
        return result

    def _sentence(self, phonemes: list[str]) -> list[Sentence]:
        known = []
        for symbol in phonemes:
            if symbol in self.id_map:
                known.append(symbol)
            elif symbol not in self._warned:
                self._warned.add(symbol)
                log.warning("phoneme %r is not in the voice's id map; it is skipped", symbol)
        if not any(symbol.strip() for symbol in known):
            return []
        return [self._encode(part) for part in self._cut(known)]

    def _ids_needed(self, phonemes: Sequence[str]) -> int:
        pad = len(self.id_map[PAD])
        return (len(self.id_map[BOS]) + pad + len(self.id_map[EOS])
                + sum(len(self.id_map[symbol]) + pad for symbol in phonemes))

    def _cut(self, phonemes: list[str]) -> list[list[str]]:
        """Split a sentence too long for the text engine at the last word gap that fits (or anywhere,
        for a single enormous word)."""
        parts: list[list[str]] = []
        rest = phonemes
        while self.max_ids is not None and self._ids_needed(rest) > self.max_ids:
            fit = 0
            while self._ids_needed(rest[: fit + 1]) <= self.max_ids:
                fit += 1
            gap = max((i for i in range(1, fit) if rest[i] == " "), default=fit)
            log.info("a sentence of %d ids is cut at phoneme %d to fit the text engine (%d ids)",
                     self._ids_needed(rest), gap, self.max_ids)
            parts.append(rest[:gap])
            rest = rest[gap:]
        parts.append(rest)
        return [part for part in parts if any(symbol.strip() for symbol in part)]

    def _encode(self, phonemes: list[str]) -> Sentence:
        pad = self.id_map[PAD]
        ids: list[int] = [*self.id_map[BOS], *pad]
        groups: list[tuple[str, int]] = [(BOS, len(self.id_map[BOS]) + len(pad))]
        for symbol in phonemes:
            ids.extend(self.id_map[symbol])
            ids.extend(pad)
            groups.append((symbol, len(self.id_map[symbol]) + len(pad)))
        ids.extend(self.id_map[EOS])
        groups.append((EOS, len(self.id_map[EOS])))
        return Sentence(tuple(phonemes), tuple(ids), tuple(groups))


def is_suffix_mark(symbol: str) -> bool:
    """Length marks, modifier letters and combining diacritics: they attach to the phoneme before them."""
    return bool(symbol) and symbol not in PREFIX_MARKS and symbol not in PAUSES and all(
        unicodedata.category(ch) in SUFFIX_CATEGORIES for ch in symbol)


def is_silence(symbol: str) -> bool:
    """A pause entry (punctuation, BOS/EOS/PAD) or a word gap: no phoneme a mark could belong to."""
    return symbol in PAUSES or not symbol.strip()


def fold_marks(timed: Iterable[PhonemeTiming]) -> list[PhonemeTiming]:
    """Timed phonemes with every stress, length and modifier mark folded into its phoneme.

    The one home of the mark rule: a suffix mark joins the phoneme before it, a stress mark (or a mark
    with no phoneme before it) joins the next phoneme, and a mark before a pause gives its time to the
    phoneme before it. Folding moves time without losing any, so folded timings that tiled the audio
    still tile it; already folded timings come back unchanged."""
    folded: list[list] = []  # [symbol, start, end]
    carry: list | None = None  # [marks, start, end] waiting for the next phoneme
    for item in sorted(timed, key=lambda t: t.start_s):
        symbol = unicodedata.normalize("NFC", item.phoneme)
        start, end = item.start_s, item.start_s + max(item.duration_s, 0.0)
        if is_suffix_mark(symbol) and carry is None and folded and not is_silence(folded[-1][0]):
            folded[-1][0] += symbol
            folded[-1][2] = max(folded[-1][2], end)
        elif symbol in PREFIX_MARKS or is_suffix_mark(symbol):
            carry = [symbol, start, end] if carry is None else [carry[0] + symbol, carry[1], end]
        elif carry is not None and is_silence(symbol) and folded and not is_silence(folded[-1][0]):
            folded[-1][2] = max(folded[-1][2], carry[2])
            folded.append([symbol, start, end])
            carry = None
        elif carry is not None:
            folded.append([symbol if is_silence(symbol) else carry[0] + symbol, carry[1], end])
            carry = None
        else:
            folded.append([symbol, start, end])
    if carry is not None and folded:
        folded[-1][2] = max(folded[-1][2], carry[2])
    return [PhonemeTiming(symbol, start, end - start) for symbol, start, end in folded]


def timings(sentence: Sentence, frames_per_id: Sequence[int], seconds_per_frame: float,
            start_s: float = 0.0) -> list[PhonemeTiming]:
    """Timed, folded phonemes of a sentence from the model's duration (in frames) of each id.

    The durations sum to the sentence's audio exactly, and folding keeps them tiling it."""
    if len(frames_per_id) != len(sentence.ids):
        raise ValueError(f"{len(frames_per_id)} durations for {len(sentence.ids)} phoneme ids")
    timed = []
    position = frame = 0  # in ids, in frames
    for symbol, count in sentence.groups:
        frames = int(sum(frames_per_id[position : position + count]))
        timed.append(PhonemeTiming(symbol, start_s + frame * seconds_per_frame, frames * seconds_per_frame))
        position += count
        frame += frames
    return fold_marks(timed)
