"""Measuring what each component really took, for comparison with the plan.

Resident set size (``VmRSS``) is what a component costs on a CPU-only machine. On a Jetson the GPU
shares the same memory but its allocations (nvmap) do not appear in the process's RSS, so the meter
also records the drop in ``MemAvailable`` from /proc/meminfo and, when pycuda is importable and a CUDA
context is current, the drop in CUDA's free memory. The component's actual figure is the largest of
these: on a quiet kiosk MemAvailable catches the GPU part; elsewhere RSS is the honest number.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1024 * 1024


def _status_kb(field: str, path: str = "/proc/self/status") -> float | None:
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """This process's resident set size in MiB (0 where /proc is missing)."""
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else 0.0


def mem_available_mb() -> float | None:
    """The kernel's estimate of memory available to new allocations, MiB."""
    kb = _status_kb("MemAvailable", "/proc/meminfo")
    return kb / 1024 if kb is not None else None


def cuda_free_total_mb() -> tuple[float, float] | None:
    """CUDA's (free, total) device memory in MiB when pycuda is importable and a context is current.

    Creating a context here would itself take memory (and a GPU), so this only reads an existing one.
    """
    try:
        import pycuda.driver as cuda  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        cuda.init()  # idempotent, creates no context
        if cuda.Context.get_current() is None:
            return None
        free, total = cuda.mem_get_info()
    except Exception as exc:  # pycuda raises its own LogicError/RuntimeError types
        log.debug("CUDA memory query failed: %s", exc)
        return None
    return free / MIB, total / MIB


def is_jetson() -> bool:
    """True on an NVIDIA Tegra board (unified CPU/GPU memory)."""
    return Path("/etc/nv_tegra_release").exists() or Path("/sys/module/tegra_fuse").exists()


@dataclass(frozen=True)
class Measurement:
    """What loading one component changed."""

    name: str
    """The component, as named in the plan."""
    rss_delta_mb: float
    """Growth of this process's resident set."""
    available_delta_mb: float | None
    """Drop in /proc/meminfo MemAvailable (recorded on a Jetson only: elsewhere other processes move it)."""
    cuda_delta_mb: float | None
    """Drop in CUDA free memory, when a CUDA context was current before and after."""
    rss_after_mb: float
    """The process's resident set after loading."""

    @property
    def actual_mb(self) -> float:
        figures = [self.rss_delta_mb] + [d for d in (self.available_delta_mb, self.cuda_delta_mb) if d is not None]
        return max(figures)


class MemoryMeter:
    """Records per-component memory while components load; ``report`` sets it against a plan."""

    def __init__(self, *, unified_memory: bool | None = None) -> None:
        self._unified = is_jetson() if unified_memory is None else unified_memory
        self._lock = threading.Lock()
        self._measurements: dict[str, Measurement] = {}
        self.start_rss_mb = rss_mb()

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Record the memory taken by whatever runs inside the block as component ``name``.

        Components are measured one at a time (loading is sequential); a block that raises records
        nothing, since the component did not load.
        """
        rss0 = rss_mb()
        avail0 = mem_available_mb() if self._unified else None
        cuda0 = cuda_free_total_mb()
        yield
        rss1 = rss_mb()
        avail1 = mem_available_mb() if self._unified else None
        cuda1 = cuda_free_total_mb()
        measurement = Measurement(
            name=name,
            rss_delta_mb=rss1 - rss0,
            available_delta_mb=(avail0 - avail1) if avail0 is not None and avail1 is not None else None,
            cuda_delta_mb=(cuda0[0] - cuda1[0]) if cuda0 is not None and cuda1 is not None else None,
            rss_after_mb=rss1,
        )
        with self._lock:
            self._measurements[name] = measurement
        log.info("memory: %s took %.0f MiB (RSS now %.0f MiB)", name, measurement.actual_mb, rss1)

    def record_total(self, name: str) -> None:
        """Record the whole process as it is now as component ``name`` (the interpreter and libraries)."""
        now = rss_mb()
        with self._lock:
            self._measurements[name] = Measurement(name, now, None, None, now)

    def measurements(self) -> dict[str, Measurement]:
        with self._lock:
            return dict(self._measurements)

    def report(self, plan) -> list[dict]:
        """Planned against actual, one record per planned component (and any measured extra)."""
        measured = self.measurements()
        if "runtime" not in measured and measured:
            # Not recorded on its own: the interpreter and libraries are what the process holds
            # beyond the components measured.
            rest = rss_mb() - sum(m.rss_delta_mb for m in measured.values())
            measured["runtime"] = Measurement("runtime", rest, None, None, rss_mb())
        rows = []
        for component in plan.components:
            row: dict = {"name": component.name, "planned_mb": round(component.planned_mb, 1)}
            found = measured.pop(component.name, None)
            row.update(_actual_fields(found, component.planned_mb))
            rows.append(row)
        for name, found in measured.items():
            rows.append({"name": name, "planned_mb": None, **_actual_fields(found, None)})
        rows.append({"name": "process", "planned_mb": round(plan.total_mb, 1), "actual_mb": round(rss_mb(), 1),
                     "error_pct": _error_pct(plan.total_mb, rss_mb())})
        return rows


def _error_pct(planned: float | None, actual: float) -> float | None:
    if planned is None or actual <= 0:
        return None
    return round((planned - actual) / actual * 100, 1)


def _actual_fields(found: Measurement | None, planned: float | None) -> dict:
    if found is None:
        return {"actual_mb": None, "error_pct": None}
    fields = {"actual_mb": round(found.actual_mb, 1), "error_pct": _error_pct(planned, found.actual_mb)}
    if found.available_delta_mb is not None:
        fields["available_delta_mb"] = round(found.available_delta_mb, 1)
    if found.cuda_delta_mb is not None:
        fields["cuda_delta_mb"] = round(found.cuda_delta_mb, 1)
    return fields
