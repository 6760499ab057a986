"""``talkerd bench``: scripted spoken turns through the real pipeline, against two references.

Each turn plays a question WAV at real-time pace into the pipeline (audio and video to null sinks) and
measures time to first audio from the true end of speech in the WAV. In the same run, on the same
inputs, it measures:
- the floor: the endpointer's minimum silence plus each component's own latency called directly
  (ASR finalisation, LLM to first clause, TTS of that clause, first face frame, output latency);
- the sequential baseline: the whole answer, then all its speech, then its mouth track.

This machine's vosk model is Korean: the bench keeps vosk's real work and timing but answers the
scripted English question, so the rest of the pipeline sees the same text on every machine.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


from ..audio import read_wav_mono
from . import named
from ..listen.sources import WavSource
from .startup import measure_startup
from .tts_chunks import measure_first_chunk_ratio
from ..components import build_pipeline, load_all
from ..config import Config, load_config
from ..errors import ComponentUnavailable, ExitCode
from ..messages import Mark, Turn
from .lipsync import AudioCapture, estimate_lag
from ..speak.playout import NullOutput, Playout, PyAudioOutput
from ..render import NullSink, RenderLoop, make_avatar
from ..render.readback import OpeningRecorder
from ..stats import percentiles

log = logging.getLogger(__name__)

QUESTIONS = (
    "Hello! Who are you?",
    "Can you recommend a good book for a rainy day?",
    "What time does the store open?",
    "Tell me something interesting about reading.",
    "What should I read if I liked Treasure Island?",
)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def synthesize_question(text: str, path: Path) -> Path:
    """A spoken question: espeak-ng, 1 s of silence after it so the endpointer can hear the end."""
    try:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True, capture_output=True)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        raise ComponentUnavailable(f"bench needs espeak-ng to speak its questions: {exc}") from None
    return path


@dataclass(frozen=True)
class TurnFigures:
    question: str
    route: str
    ttfa_ms: float
    stages_ms: dict[str, float]
    floor_ms: float
    floor_parts_ms: dict[str, float]
    sequential_ms: float


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


class Bench:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.parts = load_all(config, want_asr=True)
        missing = [n for n in ("endpointer", "asr", "knowledge", "llm", "tts") if getattr(self.parts, "dialogue" if n == "llm" else n) is None]
        if missing:
            raise ComponentUnavailable(f"bench needs every stage; not loaded: {', '.join(missing)}")
        self.rate = self.parts.tts.sample_rate
        self.output, self.capture, self.lipsync_note = self._open_audio(config)
        self.source = WavSource(config.audio)
        self.playout = Playout(self.output, self.rate, config.audio, lip_lead_s=config.render.lip_lead_ms / 1000)
        self.pipeline = build_pipeline(self.parts, self.source, self.playout)
        self.finished: list[Turn] = []
        self.pipeline.on_turn_end = self._on_turn_end
        self._turn_done = threading.Event()
        self._stop_render = threading.Event()
        self.avatar = make_avatar(config.render)
        self.recorder = OpeningRecorder(NullSink(), self.avatar)
        self.render_loop = RenderLoop(self.avatar, self.recorder, self.playout.clock, config.render.fps)

    def _open_audio(self, config: Config):
        """The real speaker and a capture of it when a sound server is there (lip sync is then
        measured); otherwise a null output paced in real time."""
        try:
            output = PyAudioOutput(config.audio, self.rate)
        except ComponentUnavailable as exc:
            return NullOutput(self.rate), None, f"not measured: no speaker ({exc.message})"
        try:
            capture = AudioCapture(config.audio.input_device)
        except ComponentUnavailable as exc:
            return output, None, f"not measured: {exc.message}"
        return output, capture, "measured"

    def _on_turn_end(self, turn: Turn) -> None:
        self.finished.append(turn)
        self._turn_done.set()

    def run(self, turns: int) -> list[TurnFigures]:
        self.pipeline.start()
        renderer = threading.Thread(target=self.render_loop.run, args=(self._stop_render,), name="talkerd-render", daemon=True)
        renderer.start()
        figures = []
        try:
            with tempfile.TemporaryDirectory() as folder:
                for index in range(turns):
                    question = QUESTIONS[index % len(QUESTIONS)]
                    wav = synthesize_question(question, Path(folder) / f"q{index}.wav")
                    figures.append(self._one_turn(question, wav))
        finally:
            self._stop_render.set()
            renderer.join(5)
            self.pipeline.stop()
            if self.capture is not None:
                self.capture.close()
        return figures

    def lipsync(self) -> dict:
        """Lag of the rendered mouth behind the captured speaker audio, per turn, and frame pacing."""
        result: dict = {"lip_sync": self.lipsync_note, "render": self.render_loop.stats().to_dict()}
        if self.capture is None:
            return result
        video = self.recorder.track()
        lags = []
        for turn in self.finished:
            start, end = turn.marks[Mark.AUDIO_OUT] - 0.5, turn.marks[Mark.TURN_END] + 0.5
            segment = video[(video[:, 0] >= start) & (video[:, 0] <= end)]
            times, level = self.capture.envelope(start, end)
            try:
                lags.append(estimate_lag(segment, times, level))
            except ValueError as exc:
                log.warning("turn %d: lip sync not measured: %s", turn.id, exc)
        if lags:
            result["lag_ms"] = {"p50": round(statistics.median(l.lag_ms for l in lags), 1), "per_turn": [l.lag_ms for l in lags]}
            result["lag_correlation"] = round(statistics.median(l.correlation for l in lags), 2)
        return result

    def _one_turn(self, question: str, wav: Path) -> TurnFigures:
        self.pipeline.question_filter = functools.partial(named, question)
        self._turn_done.clear()
        ended_before = len(self.source.speech_ended)
        self.source.queue_wav(wav)
        if not self._turn_done.wait(120):
            raise ComponentUnavailable(f"the turn for {question!r} did not finish within 120 s")
        turn = self.finished[-1]
        speech_end = self.source.speech_ended[ended_before]
        ttfa = turn.marks[Mark.AUDIO_OUT] - speech_end
        stages = {m.value: _ms(t - speech_end) for m, t in sorted(turn.marks.items(), key=lambda kv: kv[1])}
        floor_parts = self._floor(question, wav, turn)
        sequential = self._sequential(question, wav, turn)
        time.sleep(0.3)
        return TurnFigures(question, turn.route.value, _ms(ttfa), stages, round(sum(floor_parts.values()), 1), floor_parts, sequential)

    # Components called directly, one at a time -----------------------------------------------------
    def _asr_finish_s(self, wav: Path) -> float:
        audio = read_wav_mono(wav, self.config.audio.capture_rate)
        asr = self.parts.asr
        asr.start()
        frame = self.config.audio.capture_rate * self.config.audio.frame_ms // 1000
        for start in range(0, len(audio), frame):
            asr.accept(audio[start : start + frame].tobytes())
        begin = time.monotonic()
        asr.finish()
        return time.monotonic() - begin

    def _answer_clauses(self, question: str, first_only: bool) -> tuple[list[str], float]:
        """The answer's clauses as the pipeline makes them (the same answerer, history not recorded),
        and the time to the first (or all)."""
        begin = time.monotonic()
        clauses = []
        for clause in self.pipeline.answerer.reply(question, record=False).clauses():
            clauses.append(clause)
            if first_only:
                break
        return clauses, time.monotonic() - begin

    def _tts_s(self, text: str, first_only: bool) -> tuple[float, list]:
        begin = time.monotonic()
        chunks = []
        for chunk in self.parts.tts.synthesize(text):
            chunks.append(chunk)
            if first_only:
                break
        return time.monotonic() - begin, chunks

    def _face_s(self, chunks) -> float:
        begin = time.monotonic()
        for chunk in chunks:
            self.pipeline.speech.mouth_track(chunk.audio, chunk.sample_rate, chunk.phonemes)
        return time.monotonic() - begin

    def _floor(self, question: str, wav: Path, turn: Turn) -> dict[str, float]:
        clauses, first_clause_s = self._answer_clauses(question, first_only=True)
        tts_s, chunks = self._tts_s(clauses[0], first_only=True)
        return {
            "min_silence": float(self.config.endpointer.min_silence_ms),
            "asr_final": _ms(self._asr_finish_s(wav)),
            "first_clause": _ms(first_clause_s),
            "tts_first_chunk": _ms(tts_s),
            "first_face": _ms(self._face_s(chunks[:1])),
            "output_latency": _ms(self.output.latency_s),
        }

    def _sequential(self, question: str, wav: Path, turn: Turn) -> float:
        clauses, answer_s = self._answer_clauses(question, first_only=False)
        tts_s, chunks = self._tts_s(" ".join(clauses), first_only=False)
        total = self.config.endpointer.min_silence_ms / 1000 + self._asr_finish_s(wav) + answer_s + tts_s + self._face_s(chunks)
        return _ms(total + self.output.latency_s)


def summarize(figures: list[TurnFigures]) -> dict:
    ttfa = [f.ttfa_ms for f in figures]
    floor = [f.floor_ms for f in figures]
    sequential = [f.sequential_ms for f in figures]
    stage_names = sorted(
        {name for f in figures for name in f.stages_ms},
        key=lambda n: statistics.median(f.stages_ms[n] for f in figures if n in f.stages_ms),
    )
    return {
        "machine": machine_description(),
        "turns": len(figures),
        "time_to_first_audio_ms": percentiles(ttfa),
        "floor_ms": percentiles(floor),
        "sequential_ms": percentiles(sequential),
        "ratio_ttfa_over_floor": round(statistics.median(t / f for t, f in zip(ttfa, floor)), 2),
        "ratio_sequential_over_streaming": round(statistics.median(s / t for s, t in zip(sequential, ttfa)), 2),
        "stages_ms": {name: percentiles([f.stages_ms[name] for f in figures if name in f.stages_ms]) for name in stage_names},
        "per_turn": [f.__dict__ for f in figures],
    }


def render_report(summary: dict) -> str:
    lines = [f"machine: {summary['machine']}", f"turns: {summary['turns']}", "", f"{'stage (ms after end of speech)':34} {'p50':>8} {'p95':>8}"]
    for name, stats in summary["stages_ms"].items():
        lines.append(f"{name:34} {stats['p50']:8.1f} {stats['p95']:8.1f}")
    lines.append("")
    for key, label in (("time_to_first_audio_ms", "time to first audio"), ("floor_ms", "floor (components alone)"), ("sequential_ms", "sequential baseline")):
        lines.append(f"{label:34} {summary[key]['p50']:8.1f} {summary[key]['p95']:8.1f}")
    lines.append("")
    lines.append(f"time to first audio / floor:       {summary['ratio_ttfa_over_floor']:.2f}")
    lines.append(f"sequential / streaming:            {summary['ratio_sequential_over_streaming']:.2f}")
    if "tts_first_chunk" in summary:
        tts = summary["tts_first_chunk"]
        lines.append(f"TTS first chunk / whole sentence:  {tts['first_chunk_ratio']:.2f}  ({tts['words']} words: first chunk {tts['first_chunk_ms']:.0f} ms, single model {tts['whole_model_ms']:.0f} ms)")
    if "render" in summary:
        render = summary["render"]
        lines.append(f"frame interval p50 / p99 (ms):     {render['interval_p50_ms']:.1f} / {render['interval_p99_ms']:.1f} ({render['frames']} frames, {render['skipped']} skipped)")
    if "startup" in summary:
        startup = summary["startup"]
        lines.append(f"process start → avatar / → READY=1: {startup.get('first_frame_s', float('nan')):.1f} s / {startup['ready_s']:.1f} s")
    if "lag_ms" in summary:
        lines.append(f"lips after sound, p50 (ms):        {summary['lag_ms']['p50']:.0f}  (per turn {summary['lag_ms']['per_turn']}, correlation {summary['lag_correlation']})")
    elif "lip_sync" in summary:
        lines.append(f"lip sync:                          {summary['lip_sync']}")
    return "\n".join(lines)


def bench_command(config_path: Path, turns: int, json_path: Path | None) -> int:
    if turns < 1:
        print("talkerd bench: --turns must be at least 1")
        return ExitCode.USAGE
    bench = Bench(load_config(config_path))
    summary = summarize(bench.run(turns))
    summary.update(bench.lipsync())
    summary["tts_first_chunk"] = measure_first_chunk_ratio(bench.parts.tts)
    summary["startup"] = measure_startup(config_path)
    publish(render_report(summary), summary, json_path)
    return ExitCode.OK


def publish(report: str, figures: dict, json_path: Path | None) -> None:
    """A benchmark's report on stdout, and its figures in ``json_path`` when given."""
    print(report)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2))
        print(f"\nwrote {json_path}")
