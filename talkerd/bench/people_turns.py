"""The end-of-turn model heard on people: its verdicts at labelled points of real recordings.

Input: the labelled set (``tests/data/people_turns.toml``: utterances of real recordings, each with
points at word ends marked complete or unfinished) and the recordings it names, in ``var/recordings/``.
Output: per threshold, how many complete utterance ends the model would have ended at the short pause,
and how many unfinished points it would have cut off had the person paused there; and how well its
probability ranks the two (the area under the ROC curve: 0.5 is chance, 1.0 always right).

Each point is heard as the endpointer hears a short pause: the utterance from its start up to the point,
then ``pause_s`` of silence. Synthetic speech says little about a model trained on people (README, "End
of turn"); this is what the repository has of people.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..audio import BadAudio, read_wav_mono
from ..listen.end_of_turn import RATE, TurnDetector
from ..tomlfile import read_toml, validation_error

LEAD_S = 0.1
"""Heard before the utterance's first word (its onset, and the room before it)."""

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordingEntry(_Strict):
    file: str
    """The WAV file's name in the recordings folder (16-bit PCM; mixed to mono and resampled to 16 kHz)."""
    about: str = ""
    """Who speaks, how, and how it was recorded."""
    source: str = ""
    """Where the recording comes from, and its licence."""


class PointEntry(_Strict):
    after: str
    """The word the point follows."""
    at: float = Field(ge=0)
    """Seconds into the recording: the end of that word."""
    complete: bool
    """True at the utterance's end; false after a word the sentence cannot end on."""


class UtteranceEntry(_Strict):
    recording: str
    """A key of ``[recordings]``."""
    text: str
    """What is said (its transcript)."""
    speaker: str = ""
    """Who says it (a name or a label)."""
    start: float = Field(ge=0)
    """Seconds into the recording: the start of the utterance's first word."""
    cuts: tuple[PointEntry, ...]
    """Its points, in time order."""

    @model_validator(mode="after")
    def _points_follow_the_start(self) -> "UtteranceEntry":
        times = [self.start] + [cut.at for cut in self.cuts]
        if len(times) < 2 or any(later <= earlier for earlier, later in zip(times, times[1:])):
            raise ValueError("cuts: one or more, in time order, after start")
        return self


class LabelledSet(_Strict):
    recordings: dict[str, RecordingEntry]
    """The recordings by name."""
    utterance: tuple[UtteranceEntry, ...]
    """The utterances, each with its points."""

    @model_validator(mode="after")
    def _recordings_named(self) -> "LabelledSet":
        if not self.utterance:
            raise ValueError("no [[utterance]]")
        unknown = sorted({u.recording for u in self.utterance} - set(self.recordings))
        if unknown:
            raise ValueError(f"utterances name recordings not in [recordings]: {', '.join(unknown)}")
        return self


@dataclass(frozen=True)
class Cut:
    """A point at the end of a word of a person's utterance."""

    recording: str
    text: str
    after: str
    start_s: float
    at_s: float
    complete: bool


@dataclass(frozen=True)
class Verdict:
    cut: Cut
    probability: float


@dataclass(frozen=True)
class Row:
    """The model's decisions at one threshold."""

    threshold: float
    complete_ended: int
    complete: int
    unfinished_cut: int
    unfinished: int


def load_cuts(path: Path) -> tuple[dict[str, str], tuple[Cut, ...]]:
    """The set's recordings (name → file name) and its points, in order; ``ConfigError`` naming the
    file and the field for a set that is missing, not TOML or not of this form."""
    try:
        labelled = LabelledSet.model_validate(read_toml(path, "labelled set"))
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None
    files = {name: recording.file for name, recording in labelled.recordings.items()}
    cuts = tuple(Cut(u.recording, u.text, c.after, u.start, c.at, c.complete) for u in labelled.utterance for c in u.cuts)
    return files, cuts


def read_recording(path: Path) -> np.ndarray:
    """float32 samples at 16 kHz of a 16-bit WAV file (mixed to mono and resampled when it is not);
    ``ValueError`` naming the file when it is missing or not such a file."""
    try:
        return read_wav_mono(path, RATE).astype(np.float32) / 32768.0
    except BadAudio as exc:
        raise ValueError(exc.message) from None


def check_lengths(recordings: dict[str, np.ndarray], cuts: tuple[Cut, ...]) -> None:
    """``ValueError`` naming the first point past the end of its recording."""
    for cut in cuts:
        length_s = len(recordings[cut.recording]) / RATE
        if cut.at_s > length_s:
            raise ValueError(f"the point after {cut.after!r} of {cut.text!r} is at {cut.at_s} s, "
                             f"past the end of {cut.recording!r} ({length_s:.2f} s)")


def heard_at(audio: np.ndarray, cut: Cut, pause_s: float = 0.2) -> np.ndarray:
    """What the model is asked about at ``cut``: the utterance up to it, then a short pause of silence."""
    start = max(0, int((cut.start_s - LEAD_S) * RATE))
    return np.concatenate([audio[start : int(cut.at_s * RATE)], np.zeros(int(pause_s * RATE), np.float32)])


def verdicts(detector: TurnDetector, recordings: dict[str, np.ndarray], cuts: tuple[Cut, ...],
             pause_s: float = 0.2) -> list[Verdict]:
    """The model's probability at each point; ``recordings``: name → samples (``read_recording``)."""
    return [Verdict(cut, detector.complete_probability(heard_at(recordings[cut.recording], cut, pause_s)))
            for cut in cuts]


def _by_label(found: list[Verdict]) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities at the complete points, and at the unfinished ones."""
    complete = np.array([v.probability for v in found if v.cut.complete])
    unfinished = np.array([v.probability for v in found if not v.cut.complete])
    return complete, unfinished


def rows(found: list[Verdict], thresholds: tuple[float, ...] = THRESHOLDS) -> list[Row]:
    complete, unfinished = _by_label(found)
    return [
        Row(t, int((complete >= t).sum()), len(complete), int((unfinished >= t).sum()), len(unfinished))
        for t in thresholds
    ]


def ranking(found: list[Verdict]) -> float | None:
    """The chance that a complete point scores above an unfinished one (ties count half); None without
    points of both kinds."""
    complete, unfinished = _by_label(found)
    if not len(complete) or not len(unfinished):
        return None
    above = (complete[:, None] > unfinished[None, :]).mean()
    ties = (complete[:, None] == unfinished[None, :]).mean()
    return float(above + ties / 2)


def report(found: list[Verdict]) -> dict:
    """The figures for all points and for each recording."""

    def figures(subset: list[Verdict]) -> dict:
        rank = ranking(subset)
        return {"ranking": None if rank is None else round(rank, 3), "rows": [r.__dict__ for r in rows(subset)]}

    by_recording = {name: [v for v in found if v.cut.recording == name] for name in dict.fromkeys(v.cut.recording for v in found)}
    return {
        "all": figures(found),
        "recordings": {name: figures(subset) for name, subset in by_recording.items()},
        "points": [
            {"recording": v.cut.recording, "text": v.cut.text, "after": v.cut.after, "complete": v.cut.complete,
             "probability": round(v.probability, 3)}
            for v in found
        ],
    }


def render(figures: dict) -> str:
    lines = ["| points | threshold | complete ends ended | unfinished points cut off |", "|---|---|---|---|"]
    for name, part in [("all", figures["all"]), *figures["recordings"].items()]:
        for row in part["rows"]:
            lines.append(
                f"| {name} (ranking {'n/a' if part['ranking'] is None else format(part['ranking'], '.2f')}) | ≥ {row['threshold']} | "
                f"{row['complete_ended']}/{row['complete']} | {row['unfinished_cut']}/{row['unfinished']} |"
            )
    return "\n".join(lines)
