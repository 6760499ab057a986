"""Fleet metrics: the status as Prometheus exposition, read back with prometheus_client's own parser;
the textfile replaced atomically under a reader that never stops; and the real daemon's file against
its own `status`."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from talkerd.control.metrics import TTFA_BUCKETS_S, Extras, TurnTally, exposition
from talkerd.control.textfile import MetricsWriter, write_atomically
from talkerd.messages import AnswerRecord, Mark, Route, Turn, TurnSource

from .daemon_harness import DaemonProcess, write_config

MB = 1024 * 1024
STATUS = {  # the shape of a real `talkerctl --json status` (development config, two typed turns)
    "state": "ready", "uptime_s": 34.4, "display": "display off", "speaking": True, "muted": False,
    "render": {"frames": 1027, "skipped": 2, "interval_p50_ms": 33.32, "interval_p99_ms": 38.1},
    "components": {"asr": {"state": "off", "detail": "no audio input"}, "llm": {"state": "ok", "detail": ""},
                   "tts": {"state": "degraded", "detail": "a clause failed"},
                   "microphone": {"state": "unavailable", "detail": "lost"}, "speaker": {"state": "ok", "detail": ""}},
    "memory": {"budget_mb": 3072, "components": [
        {"name": "llm", "planned_mb": 223.6, "actual_mb": 173.9, "error_pct": 28.6},
        {"name": "asr", "planned_mb": 516.8, "actual_mb": None, "error_pct": None}]},
    "engines": {"piper-joe-text": {"state": "ok", "name": "piper-joe-text", "backend": "onnxruntime", "degraded": False, "memory_mb": 64.2},
                "face-mouth": {"state": "degraded", "name": "face-mouth", "backend": "tensorrt", "degraded": True, "memory_mb": 0.0}},
    "turns": 2, "engines_release": 7,
    "latency_ms": {"time_to_first_audio": {"n": 2, "p50": 348.1, "p95": 525.8}},
}


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample as (name, sorted labels) → value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def finished_turn(source: TurnSource, route: Route, ttfa_s: float) -> Turn:
    turn = Turn(source, question="q")
    turn.mark(Mark.SPEECH_END, 100.0)
    turn.mark(Mark.AUDIO_OUT, 100.0 + ttfa_s)
    turn.publish(AnswerRecord(route, ("an answer",)))
    return turn


def test_the_exposition_parses_back_to_the_status():
    samples = parse(exposition(STATUS, extras=Extras(watchdog_stale=("brain",), watchdog_misses=4)).decode())
    assert samples[("talkerd_state", (("state", "ready"),))] == 1
    assert samples[("talkerd_state", (("state", "starting"),))] == 0
    assert samples[("talkerd_uptime_seconds", ())] == 34.4
    assert samples[("talkerd_component_state", (("component", "tts"), ("state", "degraded")))] == 1
    assert samples[("talkerd_component_state", (("component", "tts"), ("state", "ok")))] == 0
    assert samples[("talkerd_component_state", (("component", "microphone"), ("state", "unavailable")))] == 1
    assert samples[("talkerd_engine_backend", (("backend", "tensorrt"), ("engine", "face-mouth")))] == 1
    assert samples[("talkerd_engine_degraded", (("engine", "face-mouth"),))] == 1
    assert samples[("talkerd_engine_degraded", (("engine", "piper-joe-text"),))] == 0
    assert samples[("talkerd_memory_budget_bytes", ())] == 3072 * MB
    assert samples[("talkerd_memory_actual_bytes", (("component", "llm"),))] == pytest.approx(173.9 * MB)
    assert ("talkerd_memory_actual_bytes", (("component", "asr"),)) not in samples  # not measured: no sample, not 0
    assert samples[("talkerd_turns_total", ())] == 2
    assert samples[("talkerd_recent_latency_seconds", (("mark", "time_to_first_audio"), ("stat", "p95")))] == pytest.approx(0.5258)
    assert samples[("talkerd_frames_skipped_total", ())] == 2
    assert samples[("talkerd_watchdog_stale_stages", ())] == 1
    assert samples[("talkerd_watchdog_misses_total", ())] == 4
    assert samples[("talkerd_engine_release", ())] == 7
    assert samples[("talkerd_speaking", ())] == 1 and samples[("talkerd_muted", ())] == 0
    assert ("talkerd_build_info", (("version", __import__("talkerd").__version__),)) in samples


def test_turns_are_counted_by_route_and_time_to_first_audio_is_a_histogram():
    tally = TurnTally()
    for source, route, ttfa in [(TurnSource.VOICE, Route.CURATED, 0.9), (TurnSource.TYPED, Route.CURATED, 1.6),
                                (TurnSource.VOICE, Route.FACTS, 2.2), (TurnSource.SAY, Route.SAY, 0.1)]:
        tally.observe(finished_turn(source, route, ttfa))
    samples = parse(exposition(STATUS, tally.snapshot()).decode())
    routes = {dict(labels)["route"]: v for (name, labels), v in samples.items() if name == "talkerd_turns_answered_total"}
    assert routes == {"curated": 2, "facts": 1, "say": 1, "smalltalk": 0, "unknown": 0, "play": 0, "ambiguous": 0, "emergency": 0}
    buckets = {dict(labels)["le"]: v for (name, labels), v in samples.items() if name == "talkerd_time_to_first_audio_seconds_bucket"}
    assert buckets["0.75"] == 0 and buckets["1"] == 1 and buckets["1.5"] == 1 and buckets["2"] == 2 and buckets["2.5"] == 3
    assert buckets["+Inf"] == 3 == samples[("talkerd_time_to_first_audio_seconds_count", ())]  # `say` is no answer
    assert samples[("talkerd_time_to_first_audio_seconds_sum", ())] == pytest.approx(4.7)
    assert len(buckets) == len(TTFA_BUCKETS_S) + 1


def test_a_reader_never_sees_a_partial_file(tmp_path):
    """One thread rewrites a large file as fast as it can; another reads it as fast as it can. Every
    read is byte for byte one whole version (and each version is valid exposition)."""
    path = tmp_path / "talkerd.prom"
    components = {f"component{i:04d}": {"state": "ok"} for i in range(400)}  # ~100 KB per version
    versions = [exposition({**STATUS, "turns": n, "components": components}) for n in range(20)]
    assert parse(versions[1].decode())[("talkerd_turns_total", ())] == 1
    write_atomically(path, versions[0])
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            write_atomically(path, versions[n % len(versions)])

    writer = threading.Thread(target=rewrite)
    writer.start()
    reads, seen = 0, set()
    try:
        while reads < 1000 or len(seen) < 3:
            data = path.read_bytes()
            assert data in versions, f"read {len(data)} bytes that are no whole version"
            seen.add(versions.index(data))
            reads += 1
    finally:
        stop.set()
        writer.join()
    assert [p.name for p in tmp_path.iterdir()] == ["talkerd.prom"]  # no temporary file left behind


def test_a_failed_write_is_reported_and_retried_without_stopping(tmp_path, caplog):
    class DaemonStandIn:
        """Only what the writer reads of the daemon (the real one is in the next test)."""
        pipeline = None
        watchdog = None

        def status(self):
            return STATUS

    writer = MetricsWriter(DaemonStandIn(), tmp_path / "missing" / "talkerd.prom", 1.0)
    assert writer.write_once() is False and writer.write_once() is False
    assert [r.getMessage() for r in caplog.records].count(f"metrics: cannot write {writer.path}: No such file or directory") == 1
    writer.path.parent.mkdir()
    assert writer.write_once() is True
    assert parse(writer.path.read_text())[("talkerd_turns_total", ())] == 2


def test_the_running_daemon_writes_what_its_status_says(tmp_path):
    textfile = tmp_path / "textfile_collector" / "talkerd.prom"
    textfile.parent.mkdir()
    config = write_config(tmp_path, extra=f'\n[metrics]\ntextfile = "{textfile}"\ninterval_s = 1\n')
    env = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent", "TALKERD_SOCKET": ""}
    daemon = DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none", env=env)
    try:
        daemon.wait_ready()
        assert daemon.call("ask", "What time does the store open?")["route"] == "curated"
        assert daemon.call("ask", "Do you sell parking permits for the moon?")["route"] in ("unknown", "facts", "smalltalk")
        status = daemon.call("status")
        deadline = time.monotonic() + 60
        while True:  # the file catches up within one interval
            samples = parse(textfile.read_text()) if textfile.exists() else {}
            if samples.get(("talkerd_turns_total", ())) == status["turns"]:
                break
            assert time.monotonic() < deadline, f"the textfile never reached {status['turns']} turns:\n{daemon.log()}"
            time.sleep(0.2)
    finally:
        assert daemon.stop() == 0, daemon.log()
    routes = {dict(l)["route"]: v for (n, l), v in samples.items() if n == "talkerd_turns_answered_total"}
    last = status["last_turn"]["route"]
    assert routes["curated"] >= 1 and routes[last] >= 1
    assert sum(routes.values()) == status["turns"]  # the greeting (say) included
    assert samples[("talkerd_state", (("state", "ready"),))] == 1
    for name, entry in status["components"].items():
        assert samples[("talkerd_component_state", (("component", name), ("state", entry["state"])))] == 1
    for name, entry in status["engines"].items():
        assert samples[("talkerd_engine_backend", (("backend", entry["backend"]), ("engine", name)))] == 1
    assert samples[("talkerd_memory_budget_bytes", ())] == status["memory"]["budget_mb"] * MB
    assert samples[("talkerd_time_to_first_audio_seconds_count", ())] == 2
    assert [p.name for p in textfile.parent.iterdir()] == ["talkerd.prom"]


def test_the_fleet_dashboard_queries_only_metrics_that_exist():
    import re

    dashboard = json.loads((Path(__file__).resolve().parent.parent / "systemd" / "grafana-talkerd-fleet.json").read_text())
    tally = TurnTally()
    tally.observe(finished_turn(TurnSource.VOICE, Route.CURATED, 0.9))
    exported = {name for name, _ in parse(exposition(STATUS, tally.snapshot(), Extras(("brain",), 3)).decode())}
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\btalkerd_[a-z0-9_]+", target["expr"])}
    assert queried and queried <= exported, f"not exported: {sorted(queried - exported)}"
    assert "node_textfile_mtime_seconds" in json.dumps(dashboard)  # a kiosk that stopped writing shows up
