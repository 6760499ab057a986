"""``talkerd bench --black-box``: the kiosk timed from outside, as a visitor would time it.

The daemon runs in a child process exactly as a kiosk runs it (``scripted_daemon``: microphone in,
speaker out) on a private PulseAudio server. Spoken questions go into its microphone in real time; its
speaker is recorded; each figure is the time from the question's last sample of speech to the first
audible sample of the answer (``ear.py``). In the same run, on the same questions and devices:
- the sequential baseline (``sequential_kiosk``): the same models, one step after the other;
- false cut-offs: questions with a pause of 400–800 ms in the middle, answered before they were finished;
- the calibration: PulseAudio's own loopback from the microphone to the speaker at known delays, timed
  by the same instrument, which says how far its figures can be trusted.
"""
from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..audio import read_wav_mono, speech_end_index
from ..config import load_config
from ..errors import ComponentUnavailable, ExitCode
from .ear import Ear
from .latency import machine_description, publish, synthesize_question
from .private_pulse import MICROPHONE, RATE, SPEAKER, PrivatePulse
from .turn_tradeoff import render_table, sweep

log = logging.getLogger(__name__)

QUESTIONS = (
    "What time does the store open?",
    "Is there parking?",
    "What should I read if I liked Treasure Island?",
    "Do you sell jigsaw puzzles?",
    "How are you today?",
    "What is your favourite book?",
)
"""In the development venue: two curated answers, the unknown answer, the LLM with a fact, the LLM alone
(twice). The route each took is read from the daemon's status."""
ROUTE_KINDS = {"curated": "curated", "unknown": "fixed", "ambiguous": "fixed", "emergency": "fixed",
               "facts": "LLM", "smalltalk": "LLM"}
"""The daemon's routes, as the goals group them: a curated entry, another fixed answer, or the LLM's."""
PAUSED = (
    ("Could you tell me", "where the café is?"),
    ("I would like to know", "what time you close."),
    ("Is there somewhere", "I can park my car?"),
    ("Do you have any books", "about the history of the river?"),
    ("My daughter wants to know", "if you have a children's section."),
    ("Can I pay", "with a card at the café?"),
)
"""Questions said in two parts, with a pause between them."""
LLM_QUESTIONS = ("How are you today?", "What is your favourite book?", "Do you sell jigsaw puzzles?")
"""Asked in turn by ``--llm-turns``: the LLM alone (twice) and the LLM with a fact."""
PAUSES_MS = (400, 600, 800)
ECHO_DELAYS_MS = (200, 500)
"""The loopback's delays for the calibration."""
ANSWER_TIMEOUT_S = 30.0
QUIET_S = 1.5
"""Silence on the speaker that ends an answer (the voice's pauses between clauses are shorter)."""
READY_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Utterance:
    text: str
    audio: np.ndarray
    """16 kHz int16, with a second of silence after the speech."""
    end: int
    """Index just after the last sample of speech."""
    pause_ms: int = 0
    pause_at: int = 0
    """Where the pause begins (paused questions)."""


@dataclass(frozen=True)
class Measured:
    system: str
    question: str
    route: str | None
    """The route the daemon reports for the turn (None for the baseline)."""
    pause_ms: int
    latency_ms: float | None
    """Last sample of speech → first audible sample of the answer; None when nothing was heard."""
    cut_off: bool
    """The answer began before the question was finished."""
    speculated: bool | None = None
    """The daemon's answer was the one it prepared during a pause (None for the baseline)."""


def _speak_to_file(text: str, folder: Path, name: str) -> np.ndarray:
    return read_wav_mono(synthesize_question(text, folder / f"{name}.wav"), RATE)


def _whole(texts, folder: Path, prefix: str) -> list[Utterance]:
    tail = np.zeros(RATE, np.int16)
    utterances = []
    for index, text in enumerate(texts):
        speech = _speak_to_file(text, folder, f"{prefix}{index}")
        end = speech_end_index(speech, RATE)
        utterances.append(Utterance(text, np.concatenate([speech[:end], tail]), end))
    return utterances


def make_utterances(folder: Path, count: int | None = None) -> tuple[list[Utterance], list[Utterance]]:
    """The questions, and the paused questions at every pause length, as spoken audio (the first
    ``count`` of each)."""
    tail = np.zeros(RATE, np.int16)
    plain = _whole(QUESTIONS[:count], folder, "q")
    paused = []
    for index, (first, second) in enumerate(PAUSED[:count]):
        one, two = _speak_to_file(first, folder, f"p{index}a"), _speak_to_file(second, folder, f"p{index}b")
        one, two = one[: speech_end_index(one, RATE)], two[: speech_end_index(two, RATE)]
        for pause_ms in PAUSES_MS:
            gap = np.zeros(RATE * pause_ms // 1000, np.int16)
            audio = np.concatenate([one, gap, two, tail])
            paused.append(Utterance(f"{first} {second}", audio, len(one) + len(gap) + len(two), pause_ms, len(one)))
    return plain, paused


class KioskProcess:
    """A system under test in a child process on the private devices: names each question on its stdin."""

    def __init__(self, name: str, module: str, config_path: Path, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self._log = log_path.open("ab")
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())  # the bench's own --log-level
        self._process = subprocess.Popen([sys.executable, "-m", module, str(config_path), level], env={**os.environ, **env},
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self._process.stdout.readline()  # blocks until the child is ready or gone
        if line.strip() != "ready":
            self.stop()
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise ComponentUnavailable(f"the {name} did not start (exit {self._process.returncode}): " + " | ".join(tail))

    def name_question(self, text: str) -> None:
        self._process.stdin.write(text + "\n")
        self._process.stdin.flush()

    def last_turn(self) -> tuple[str | None, bool | None]:
        """The route of the last answer and whether it was prepared during a pause (unknown: None)."""
        return None, None

    def wait_idle(self) -> None:
        """Until the system has said all of its answer (the baseline plays it in one piece)."""

    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._log.close()


class DaemonProcess(KioskProcess):
    """The daemon; the route of its last turn comes from its control socket."""

    def __init__(self, config_path: Path, env: dict[str, str], log_path: Path) -> None:
        super().__init__("talkerd", "talkerd.bench.scripted_daemon", config_path, env, log_path)
        from ..control.protocol import resolve_socket_path

        self._socket = resolve_socket_path(load_config(config_path).control.socket)

    def last_turn(self) -> tuple[str | None, bool | None]:
        turn = self._status().get("last_turn") or {}
        return turn.get("route"), "pause" in (turn.get("latency_ms") or {})

    def wait_idle(self, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        """A pause between two clauses longer than ``QUIET_S`` (a busy machine) is not the answer's end."""
        deadline = time.monotonic() + timeout_s
        while self._status().get("speaking") and time.monotonic() < deadline:
            time.sleep(0.1)

    def _status(self) -> dict:
        from ..control.protocol import ControlClient

        client = ControlClient(self._socket, timeout_s=10)
        try:
            return client.call("status")
        finally:
            client.close()


def measure(ear: Ear, system: KioskProcess, utterance: Utterance) -> Measured:
    """One spoken question: how long after its end the answer was heard, and whether it came too soon."""
    system.name_question(utterance.text)
    ear.wait_quiet(QUIET_S)
    spoken = ear.speak(utterance.audio)
    end = spoken.time_of(utterance.end)
    heard = ear.first_sound_after(spoken.time_of(utterance.pause_at if utterance.pause_ms else utterance.end),
                                  ANSWER_TIMEOUT_S)
    system.wait_idle()
    ear.wait_quiet(QUIET_S)
    route, speculated = system.last_turn() if heard is not None else (None, None)
    latency = None if heard is None else round((heard - end) * 1000, 1)
    return Measured(system.name, utterance.text, route, utterance.pause_ms, latency, heard is not None and heard < end,
                    speculated)


def calibrate(ear: Ear, pulse: PrivatePulse, rounds: int) -> list[dict]:
    """PulseAudio's loopback from the microphone to the speaker at each known delay, timed by the ear:
    a 200 ms tone after silence, from its first sample spoken to its first sample heard."""
    tone = (0.25 * 32767 * np.sin(2 * np.pi * 440 * np.arange(RATE // 5) / RATE)).astype(np.int16)
    lead = np.zeros(RATE // 2, np.int16)
    stimulus = np.concatenate([lead, tone, np.zeros(RATE, np.int16)])
    results = []
    for delay_ms in ECHO_DELAYS_MS:
        module = pulse.loopback(MICROPHONE, SPEAKER, delay_ms)
        try:
            ear.speak(np.zeros(RATE * 3, np.int16))  # the loopback settles on its latency
            measured = []
            for _ in range(rounds):
                ear.wait_quiet(0.5)
                spoken = ear.speak(stimulus)
                heard = ear.first_sound_after(spoken.time_of(len(lead)) - 0.05, 5.0)
                if heard is not None:
                    measured.append((heard - spoken.time_of(len(lead))) * 1000)
        finally:
            pulse.unload(module)
        errors = [m - delay_ms for m in measured]
        results.append({"delay_ms": delay_ms, "heard": len(measured), "of": rounds,
                        "error_ms_median": round(statistics.median(errors), 1) if errors else None,
                        "error_ms_range": [round(min(errors), 1), round(max(errors), 1)] if errors else None})
    return results


def run_system(ear: Ear, system: KioskProcess, plain: list[Utterance], paused: list[Utterance], rounds: int) -> list[Measured]:
    figures = []
    for _ in range(rounds):
        figures += [measure(ear, system, utterance) for utterance in plain]
    figures += [measure(ear, system, utterance) for utterance in paused]
    return figures


def run_llm_turns(ear: Ear, system: KioskProcess, utterances: list[Utterance], turns: int) -> list[Measured]:
    """``turns`` consecutive questions to the LLM, the utterances in turn, one visitor's conversation."""
    return [measure(ear, system, utterances[turn % len(utterances)]) for turn in range(turns)]


def _p50(values) -> float | None:
    return round(statistics.median(values), 1) if values else None


def summarize_llm_turns(figures: list[Measured], questions: int) -> dict:
    """Whether the answers slow down over consecutive LLM turns: the p50 of the turns just after the first
    (a cold one) against the p50 of the last ones, two rounds of the ``questions`` each, so both hold the
    same questions."""
    window = 2 * questions
    latencies = [f.latency_ms for f in figures]
    early = [ms for ms in latencies[1 : 1 + window] if ms is not None]
    late = [ms for ms in latencies[-window:] if ms is not None]
    early_p50, late_p50 = _p50(early), _p50(late)
    by_question = {}
    for question in dict.fromkeys(f.question for f in figures):
        first, last = ([f.latency_ms for f in part if f.question == question and f.latency_ms is not None]
                       for part in (figures[1 : 1 + window], figures[-window:]))
        by_question[question] = {"early_p50_ms": _p50(first), "late_p50_ms": _p50(last)}
    routes: dict[str, int] = {}
    for f in figures:
        kind = ROUTE_KINDS.get(f.route, "unanswered" if f.route is None else f.route)
        routes[kind] = routes.get(kind, 0) + 1
    return {"turns": len(figures), "window": window, "early_turns": [2, 1 + window],
            "late_turns": [len(figures) - window + 1, len(figures)], "early_p50_ms": early_p50, "late_p50_ms": late_p50,
            "late_over_early": round(late_p50 / early_p50, 2) if early_p50 and late_p50 else None,
            "by_question": by_question, "routes": routes,
            "unanswered": sum(ms is None for ms in latencies)}


def summarize(figures: list[Measured], calibration: list[dict], tradeoff: list[dict]) -> dict:
    summary: dict = {"machine": machine_description(), "calibration": calibration, "end_of_turn_tradeoff": tradeoff,
                     "systems": {}}
    for system in dict.fromkeys(f.system for f in figures):
        mine = [f for f in figures if f.system == system]
        plain = [f for f in mine if not f.pause_ms]
        by_question = {q: _p50([f.latency_ms for f in plain if f.question == q and f.latency_ms is not None])
                       for q in dict.fromkeys(f.question for f in plain)}
        by_route = {kind: _p50([f.latency_ms for f in plain if ROUTE_KINDS.get(f.route) == kind and f.latency_ms is not None])
                    for kind in dict.fromkeys(ROUTE_KINDS[f.route] for f in plain if f.route in ROUTE_KINDS)}
        cut = {p: f"{sum(f.cut_off for f in mine if f.pause_ms == p)}/{sum(f.pause_ms == p for f in mine)}" for p in PAUSES_MS}
        summary["systems"][system] = {
            "p50_ms": _p50([f.latency_ms for f in plain if f.latency_ms is not None]),
            "unanswered": sum(f.latency_ms is None for f in plain),
            "by_question_p50_ms": by_question, "by_route_p50_ms": by_route, "false_cut_offs_by_pause_ms": cut,
            "prepared_in_a_pause": (f"{sum(bool(f.speculated) for f in plain)}/{len(plain)}"
                                    if any(f.speculated is not None for f in plain) else None),
        }
    talkerd, baseline = (summary["systems"].get(name, {}).get("by_question_p50_ms", {}) for name in ("talkerd", "sequential"))
    ratios = [talkerd[q] / baseline[q] for q in talkerd if talkerd.get(q) and baseline.get(q)]
    summary["ratio_talkerd_over_sequential"] = round(statistics.median(ratios), 2) if ratios else None
    summary["per_turn"] = [asdict(f) for f in figures]
    return summary


def render_report(summary: dict) -> str:
    lines = [f"machine: {summary['machine']}", "", "calibration (loopback at a known delay, measured − delay):"]
    for row in summary["calibration"]:
        lines.append(f"  {row['delay_ms']:4d} ms: heard {row['heard']}/{row['of']}, error median {row['error_ms_median']} ms, "
                     f"range {row['error_ms_range']}")
    for name, system in summary["systems"].items():
        lines += ["", f"{name}: p50 {system['p50_ms']} ms from the end of speech to the first audible answer"
                      f" ({system['unanswered']} unanswered)"]
        lines += [f"  {question:52} {ms} ms" for question, ms in system["by_question_p50_ms"].items()]
        if system["by_route_p50_ms"]:
            lines.append("  by route: " + ", ".join(f"{route} {ms} ms" for route, ms in system["by_route_p50_ms"].items()))
        lines.append("  false cut-offs by pause: " + ", ".join(f"{p} ms {c}" for p, c in system["false_cut_offs_by_pause_ms"].items()))
        if system["prepared_in_a_pause"] is not None:
            lines.append(f"  answers prepared during the pause and used: {system['prepared_in_a_pause']}")
    lines += ["", "end of turn, the endpointer alone on the same questions (false cut-offs by pause; wait after a whole question):"]
    lines += render_table(summary["end_of_turn_tradeoff"])
    lines += ["", f"talkerd / sequential (median of the per-question p50 ratios): {summary['ratio_talkerd_over_sequential']}"]
    return "\n".join(lines)


def render_llm_turns_report(summary: dict) -> str:
    turns = summary["llm_turns"]
    lines = [f"machine: {summary['machine']}", "", "calibration (loopback at a known delay, measured − delay):"]
    lines += [f"  {row['delay_ms']:4d} ms: heard {row['heard']}/{row['of']}, error median {row['error_ms_median']} ms"
              for row in summary["calibration"]]
    lines += ["", f"{turns['turns']} consecutive LLM turns ({', '.join(LLM_QUESTIONS)} in turn), routes {turns['routes']}:",
              f"  turns {turns['early_turns'][0]}–{turns['early_turns'][1]}: p50 {turns['early_p50_ms']} ms",
              f"  turns {turns['late_turns'][0]}–{turns['late_turns'][1]}: p50 {turns['late_p50_ms']} ms",
              f"  last / early: {turns['late_over_early']}  ({turns['unanswered']} unanswered)"]
    lines += [f"  {question:40} {row['early_p50_ms']} → {row['late_p50_ms']} ms" for question, row in turns["by_question"].items()]
    return "\n".join(lines)


def _timed_from_outside(config_path: Path, folder: Path, json_path: Path | None, rounds: int, run) -> tuple[list[Measured], list[dict]]:
    """The private devices, the ear and the calibration around ``run(ear, pulse.env, log_path)``; the
    children's log beside the JSON file, else in ``folder``."""
    log_path = json_path.with_suffix(".log") if json_path is not None else folder / "children.log"
    if json_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")
    pulse = PrivatePulse(folder).start()
    try:
        os.environ.update(pulse.env)  # the control socket of the daemon is under the private runtime folder
        ear = Ear(pulse).start()
        try:
            calibration = calibrate(ear, pulse, rounds=max(3, rounds))
            return run(ear, pulse.env, log_path), calibration
        finally:
            ear.stop()
    finally:
        pulse.stop()


def _run_each(ear: Ear, starts, measure_system) -> list[Measured]:
    figures: list[Measured] = []
    for start in starts:
        system = start()
        try:
            figures += measure_system(ear, system)
        finally:
            system.stop()
    return figures


def black_box_command(config_path: Path, rounds: int, json_path: Path | None, baseline: bool = True,
                      questions: int | None = None, llm_turns: int | None = None) -> int:
    """Figures on stdout (and in ``json_path``); the children's log beside the JSON file, else discarded.
    With ``llm_turns``, only that many consecutive LLM turns on the daemon (no baseline, no pauses)."""
    least_llm_turns = 4 * len(LLM_QUESTIONS) + 1
    if rounds < 1 or (questions is not None and questions < 1) or (llm_turns is not None and llm_turns < least_llm_turns):
        print(f"talkerd bench --black-box: --rounds and --questions must be at least 1, --llm-turns at least {least_llm_turns}")
        return ExitCode.USAGE
    if llm_turns is not None and (questions is not None or not baseline):
        print("talkerd bench --black-box: --llm-turns asks the daemon its own LLM questions, with no baseline: "
              "it takes neither --questions nor --no-baseline")
        return ExitCode.USAGE
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="talkerd-blackbox-") as name:
        folder = Path(name)
        if llm_turns is not None:
            asked = _whole(LLM_QUESTIONS, folder, "l")
            figures, calibration = _timed_from_outside(config_path, folder, json_path, rounds, lambda ear, env, log: _run_each(
                ear, [lambda: DaemonProcess(config_path, env, log)], lambda e, system: run_llm_turns(e, system, asked, llm_turns)))
            summary = {"machine": machine_description(), "calibration": calibration,
                       "llm_turns": summarize_llm_turns(figures, len(LLM_QUESTIONS)), "per_turn": [asdict(f) for f in figures]}
            report = render_llm_turns_report(summary)
        else:
            plain, paused = make_utterances(folder, questions)
            tradeoff = sweep(load_config(config_path), plain, paused)

            def systems(ear, env, log):
                starts = [lambda: DaemonProcess(config_path, env, log)]
                if baseline:
                    starts.append(lambda: KioskProcess("sequential", "talkerd.bench.sequential_kiosk", config_path, env, log))
                return _run_each(ear, starts, lambda e, system: run_system(e, system, plain, paused, rounds))

            figures, calibration = _timed_from_outside(config_path, folder, json_path, rounds, systems)
            summary = summarize(figures, calibration, tradeoff)
            report = render_report(summary)
    summary["duration_s"] = round(time.monotonic() - started, 1)
    publish(report, summary, json_path)
    return ExitCode.OK
