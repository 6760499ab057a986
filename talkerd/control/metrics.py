"""The daemon's health and figures in Prometheus' exposition format (prometheus_client).

``exposition(status, tally, extras)`` turns one ``Daemon.status()`` snapshot, plus the cumulative
turn tally and a few figures status does not carry, into the text node_exporter's textfile collector
reads. Nothing here listens on the network: ``textfile.MetricsWriter`` writes the result to a file.

Every metric is named ``talkerd_*``; node_exporter adds the kiosk's ``instance`` label, so a fleet is
one query away (``sum by (route) (rate(talkerd_turns_answered_total[1h]))``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily

from .. import __version__
from ..components import State
from ..messages import Route, Turn
from ..stats import TIME_TO_FIRST_AUDIO, answer_time_to_first_audio_ms

DAEMON_STATES = ("starting", "ready", "reloading", "stopping")
"""Every value ``status["state"]`` may take; each gets a 0/1 sample so that a query never meets a gap."""
TTFA_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)
"""Time-to-first-audio histogram bounds: dense around the 0.8–2 s a kiosk answers in."""
MB = 1024 * 1024


@dataclass(frozen=True)
class TallySnapshot:
    """Cumulative counts since the daemon started."""

    answered: dict[str, int] = field(default_factory=dict)
    """Finished turns by route."""
    ttfa_buckets: tuple[int, ...] = (0,) * len(TTFA_BUCKETS_S)
    """Answers whose time to first audio was at most each bound (cumulative, as Prometheus wants)."""
    ttfa_count: int = 0
    ttfa_sum_s: float = 0.0


class TurnTally:
    """Counts every finished turn by route and its time to first audio in a histogram.

    Status keeps only the recent turns' percentiles; a fleet needs counters that only go up (rates
    across restarts, histograms aggregated over kiosks), so these are fed turn by turn.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answered: dict[str, int] = {route.value: 0 for route in Route}
        self._buckets = [0] * len(TTFA_BUCKETS_S)
        self._count = 0
        self._sum_s = 0.0

    def observe(self, turn: Turn) -> None:
        """One finished turn (the pipeline's ``on_turn_end``)."""
        record = turn.answer_record
        ttfa_ms = answer_time_to_first_audio_ms(turn)
        with self._lock:
            if record is not None:
                self._answered[record.route.value] = self._answered.get(record.route.value, 0) + 1
            if ttfa_ms is not None:
                self._add_ttfa(ttfa_ms / 1000.0)

    def _add_ttfa(self, seconds: float) -> None:
        self._count += 1
        self._sum_s += seconds
        for i, bound in enumerate(TTFA_BUCKETS_S):
            if seconds <= bound:
                self._buckets[i] += 1

    def snapshot(self) -> TallySnapshot:
        with self._lock:
            return TallySnapshot(dict(self._answered), tuple(self._buckets), self._count, self._sum_s)


@dataclass(frozen=True)
class Extras:
    """What the exposition needs beyond ``status()``."""

    watchdog_stale: tuple[str, ...] | None = None
    """Stages whose heartbeat is too old right now (the watchdog withholds WATCHDOG=1); None: no watchdog."""
    watchdog_misses: int | None = None
    """WATCHDOG=1 pings withheld since the start because a stage was stale; None: no watchdog."""


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"talkerd_{name}", doc, labels=list(labels))


def _daemon_families(status: dict[str, Any], extras: Extras):
    yield InfoMetricFamily("talkerd_build", "talkerd's version", value={"version": __version__})
    state = _gauge("state", "1 for the daemon's current state", ("state",))
    current = status.get("state", "starting")
    for name in sorted({*DAEMON_STATES, current}):
        state.add_metric([name], 1.0 if name == current else 0.0)
    yield state
    uptime = _gauge("uptime_seconds", "Seconds since the daemon started")
    uptime.add_metric([], float(status.get("uptime_s", 0.0)))
    yield uptime
    for key, doc in (("speaking", "1 while the avatar speaks"), ("muted", "1 while the microphone is muted")):
        if key in status:
            family = _gauge(key, doc)
            family.add_metric([], 1.0 if status[key] else 0.0)
            yield family
    if status.get("engines_release") is not None:
        family = _gauge("engine_release", "The OTA release the engines were loaded from")
        family.add_metric([], float(status["engines_release"]))
        yield family
    if extras.watchdog_stale is not None:
        family = _gauge("watchdog_stale_stages", "Stages without a fresh heartbeat now (WATCHDOG=1 withheld while > 0)")
        family.add_metric([], float(len(extras.watchdog_stale)))
        yield family
    if extras.watchdog_misses is not None:
        misses = CounterMetricFamily("talkerd_watchdog_misses", "WATCHDOG=1 pings withheld because a stage was stale")
        misses.add_metric([], float(extras.watchdog_misses))
        yield misses


def _component_families(status: dict[str, Any]):
    components = status.get("components") or {}
    states = [s.value for s in State]
    family = _gauge("component_state", "1 for each component's and device's current state", ("component", "state"))
    for name, entry in sorted(components.items()):
        current = entry.get("state")
        for state in sorted({*states, current}):
            family.add_metric([name, state], 1.0 if state == current else 0.0)
    yield family
    engines = status.get("engines") or {}
    backend = _gauge("engine_backend", "1 for the backend each engine runs on", ("engine", "backend"))
    degraded = _gauge("engine_degraded", "1 when an engine fell back after an error", ("engine",))
    memory = _gauge("engine_memory_bytes", "Memory each engine reports", ("engine",))
    for name, entry in sorted(engines.items()):
        backend.add_metric([name, str(entry.get("backend"))], 1.0)
        degraded.add_metric([name], 1.0 if entry.get("degraded") else 0.0)
        if entry.get("memory_mb") is not None:
            memory.add_metric([name], float(entry["memory_mb"]) * MB)
    yield from (backend, degraded, memory)


def _memory_families(status: dict[str, Any]):
    memory = status.get("memory") or {}
    if memory.get("budget_mb") is not None:
        budget = _gauge("memory_budget_bytes", "memory.budget_mb: what the daemon may use, CPU and GPU together")
        budget.add_metric([], float(memory["budget_mb"]) * MB)
        yield budget
    planned = _gauge("memory_planned_bytes", "Memory the plan expects per component", ("component",))
    actual = _gauge("memory_actual_bytes", "Memory measured per component after loading", ("component",))
    for row in memory.get("components") or []:
        if row.get("planned_mb") is not None:
            planned.add_metric([row["name"]], float(row["planned_mb"]) * MB)
        if row.get("actual_mb") is not None:
            actual.add_metric([row["name"]], float(row["actual_mb"]) * MB)
    yield from (planned, actual)


def _turn_families(status: dict[str, Any], tally: TallySnapshot | None):
    turns = CounterMetricFamily("talkerd_turns", "Turns finished since the daemon started")
    turns.add_metric([], float(status.get("turns", 0)))
    yield turns
    if tally is not None:
        answered = CounterMetricFamily("talkerd_turns_answered", "Finished turns by how they were answered", labels=["route"])
        for route, count in sorted(tally.answered.items()):
            answered.add_metric([route], float(count))
        yield answered
        buckets = [(f"{bound:g}", float(count)) for bound, count in zip(TTFA_BUCKETS_S, tally.ttfa_buckets)]
        buckets.append(("+Inf", float(tally.ttfa_count)))
        yield HistogramMetricFamily("talkerd_time_to_first_audio_seconds",
                                    "End of the visitor's question to the first sample of the answer out of the speaker",
                                    buckets=buckets, sum_value=tally.ttfa_sum_s)
    recent = _gauge("recent_latency_seconds", "p50/p95 over the recent turns, per trace mark", ("mark", "stat"))
    for mark, figures in sorted((status.get("latency_ms") or {}).items()):
        for stat in ("p50", "p95"):
            if stat in figures:
                recent.add_metric([mark, stat], figures[stat] / 1000.0)
    yield recent


def _render_families(status: dict[str, Any]):
    render = status.get("render") or {}
    if not render:
        return
    frames = CounterMetricFamily("talkerd_frames_drawn", "Avatar frames drawn")
    frames.add_metric([], float(render.get("frames", 0)))
    skipped = CounterMetricFamily("talkerd_frames_skipped", "Avatar frames skipped (late)")
    skipped.add_metric([], float(render.get("skipped", 0)))
    yield from (frames, skipped)
    if render.get("interval_p99_ms") is not None:
        interval = _gauge("frame_interval_p99_seconds", "99th percentile of the time between shown frames")
        interval.add_metric([], render["interval_p99_ms"] / 1000.0)
        yield interval


class _StatusCollector:
    """A prometheus_client collector over one status snapshot."""

    def __init__(self, status: dict[str, Any], tally: TallySnapshot | None, extras: Extras) -> None:
        self._status, self._tally, self._extras = status, tally, extras

    def collect(self):
        yield from _daemon_families(self._status, self._extras)
        yield from _component_families(self._status)
        yield from _memory_families(self._status)
        yield from _turn_families(self._status, self._tally)
        yield from _render_families(self._status)


def exposition(status: dict[str, Any], tally: TallySnapshot | None = None, extras: Extras = Extras()) -> bytes:
    """The text exposition format (version 0.0.4) of one status snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status, tally, extras))
    return generate_latest(registry)


__all__ = ["DAEMON_STATES", "Extras", "TIME_TO_FIRST_AUDIO", "TTFA_BUCKETS_S", "TallySnapshot", "TurnTally", "exposition"]
