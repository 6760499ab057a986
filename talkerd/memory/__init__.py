"""The memory budget: plan every component before loading, enforce ``memory.budget_mb``, measure after.

``plan_memory(config)`` estimates from metadata only; ``enforce_budget(config)`` refuses or shrinks
the LLM context; ``MemoryMeter`` records what each component really took and reports planned against
actual for status; ``plan_command`` is ``talkerd plan``.
"""
from __future__ import annotations

from .command import plan_command
from .gguf_header import GgufModel, read_gguf_model
from .meter import Measurement, MemoryMeter, rss_mb
from .plan import MIN_SHRUNK_CTX, ComponentEstimate, MemoryPlan, enforce_budget, plan_memory

__all__ = [
    "ComponentEstimate", "GgufModel", "MIN_SHRUNK_CTX", "Measurement", "MemoryMeter", "MemoryPlan",
    "enforce_budget", "plan_command", "plan_memory", "read_gguf_model", "rss_mb",
]
