"""The sections of running the kiosk: inference engines, the memory budget, the control socket, fleet
metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from .base import ConfigPath, Section


class EnginesConfig(Section):
    dir: ConfigPath
    """Folder of engine definitions (one sub-folder per engine, with manifest.toml)."""
    build_dir: ConfigPath
    """Folder for built TensorRT engines and provisioned ONNX files."""
    backend: Literal["auto", "tensorrt", "onnxruntime"] = "auto"
    """Default runtime: TensorRT where a matching engine loads, else ONNX Runtime."""
    cpu_threads: int = Field(default=2, ge=1, le=64)
    """Intra-op threads for ONNX Runtime."""
    backends: dict[str, Literal["auto", "tensorrt", "onnxruntime"]] = {}
    """Per-engine override of ``backend``, by engine name ("piper-joe-text" = "onnxruntime")."""



class MemoryConfig(Section):
    budget_mb: int = Field(default=4096, ge=64)
    """Everything the daemon loads must fit in this many MiB."""
    policy: Literal["refuse", "shrink"] = "refuse"
    """Over budget: refuse to start, or shrink the LLM context until it fits."""


class ControlConfig(Section):
    socket: ConfigPath = Path("${XDG_RUNTIME_DIR}/talkerd/control.sock")
    """The control socket; /run/talkerd/control.sock on a kiosk."""
    group: str | None = None
    """Group that may use the socket (mode 0660); none keeps the process's group."""
    heartbeat_stale_s: float = Field(default=10.0, gt=0, le=300)
    """systemd's watchdog is fed only while every stage has beaten within this many seconds; keep it
    under the unit's ``WatchdogSec`` so a hung stage gets the daemon restarted."""


class MetricsConfig(Section):
    textfile: ConfigPath | None = None
    """Where the Prometheus exposition is written for node_exporter's textfile collector (a file
    ending in .prom, replaced atomically). None writes nothing (development); the kiosk profile uses
    /var/lib/node_exporter/textfile_collector/talkerd.prom."""
    interval_s: float = Field(default=5.0, ge=1.0, le=300.0)
    """Seconds between rewrites of the textfile; node_exporter reads it at each scrape."""

