"""The memory plan: every component's estimate against ``memory.budget_mb``, made before anything loads.

Over budget, ``enforce_budget`` either refuses (``BudgetError``, exit 78, the table as the message) or,
with ``memory.policy = "shrink"``, lowers ``llm.n_ctx`` in steps of 256 to the largest context that
fits, never below ``MIN_SHRUNK_CTX``, and says so in the plan's notes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import Config
from ..errors import BudgetError, ConfigError
from . import estimates
from .gguf_header import GgufModel, read_gguf_model

log = logging.getLogger(__name__)

CTX_STEP = 256
"""llama.cpp pads the context to a multiple of 256; shrinking in these steps wastes nothing."""
MIN_SHRUNK_CTX = 512
"""Below this the persona prompt, a few facts, the history and an answer no longer fit the context."""


@dataclass(frozen=True)
class ComponentEstimate:
    """One component's planned memory."""

    name: str
    """The component: runtime, renderer, endpointer, asr, knowledge, llm, engine names, cuda."""
    planned_mb: float
    """Planned resident memory in MiB."""
    detail: str
    """How the figure was reached ("weights 92 MB + KV 45 MB (n_ctx 2048) + ...")."""


@dataclass(frozen=True)
class MemoryPlan:
    """Everything the daemon will load, against the budget."""

    budget_mb: int
    """``memory.budget_mb``."""
    components: tuple[ComponentEstimate, ...]
    """Every component, in loading order."""
    n_ctx: int
    """The LLM context the plan was made for (after shrinking, if it shrank)."""
    notes: tuple[str, ...]
    """What the operator should know: a shrunk context, components not counted."""

    @property
    def total_mb(self) -> float:
        return sum(c.planned_mb for c in self.components)

    @property
    def fits(self) -> bool:
        return self.total_mb <= self.budget_mb

    def table(self) -> str:
        """A readable table naming every component, the total and the budget."""
        width = max([len(c.name) for c in self.components] + [len("component"), len("budget")])
        lines = [f"{'component':<{width}}  {'planned MB':>10}  detail"]
        lines += [f"{c.name:<{width}}  {c.planned_mb:>10.0f}  {c.detail}" for c in self.components]
        lines.append(f"{'total':<{width}}  {self.total_mb:>10.0f}")
        margin = self.budget_mb - self.total_mb
        verdict = f"headroom {margin:.0f} MB" if self.fits else f"OVER BUDGET by {-margin:.0f} MB"
        lines.append(f"{'budget':<{width}}  {self.budget_mb:>10}  {verdict}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "budget_mb": self.budget_mb,
            "total_mb": round(self.total_mb, 1),
            "headroom_mb": round(self.budget_mb - self.total_mb, 1),
            "fits": self.fits,
            "n_ctx": self.n_ctx,
            "components": [
                {"name": c.name, "planned_mb": round(c.planned_mb, 1), "detail": c.detail} for c in self.components
            ],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Parts:
    """The estimates that do not depend on n_ctx, and the LLM model (None when it cannot be read)."""

    before_llm: tuple[estimates.Estimate, ...]
    after_llm: tuple[estimates.Estimate, ...]
    model: GgufModel | None
    llm_note: str
    gpu: bool


def _gather(config: Config) -> _Parts:
    from ..registry import AFTER_LLM, BEFORE_LLM

    before = [estimates.runtime_estimate(config)] + [c.estimate(config) for c in BEFORE_LLM if c.enabled(config)]
    after = [c.estimate(config) for c in AFTER_LLM if c.enabled(config)]
    if config.tts.prerender:
        after.append(estimates.speech_cache_estimate(config))
    tensorrt = any(e.on_tensorrt for e in after)
    gpu = config.llm.n_gpu_layers != 0
    if gpu or tensorrt:
        cuda_mb = (estimates.CUDA_RUNTIME_MB if gpu else 0.0) + (estimates.TENSORRT_RUNTIME_MB if tensorrt else 0.0)
        users = " and ".join(u for u, used in (("llama.cpp offload", gpu), ("TensorRT", tensorrt)) if used)
        after.append(estimates.Estimate("cuda", cuda_mb, f"CUDA context and libraries for {users} (documented, not measured)"))
    model, llm_note = None, ""
    try:
        model = read_gguf_model(config.llm.model)
    except ConfigError as exc:
        llm_note = f"llm: not counted: {exc.message}"
    return _Parts(tuple(before), tuple(after), model, llm_note, gpu)


def _plan(config: Config, parts: _Parts, n_ctx: int, extra_notes: tuple[str, ...] = ()) -> MemoryPlan:
    if parts.model is not None:
        llm = estimates.llm_estimate(parts.model, n_ctx, parts.gpu)
    else:
        llm = estimates.Estimate("llm", 0.0, "not counted", parts.llm_note)
    everything = parts.before_llm + (llm,) + parts.after_llm
    notes = extra_notes + tuple(e.note for e in everything if e.note)
    if parts.model is not None and n_ctx > parts.model.n_ctx_train > 0:
        notes += (f"llm: n_ctx {n_ctx} is beyond the {parts.model.n_ctx_train} tokens the model was trained for",)
    return MemoryPlan(
        budget_mb=config.memory.budget_mb,
        components=tuple(ComponentEstimate(e.name, e.planned_mb, e.detail) for e in everything),
        n_ctx=n_ctx,
        notes=notes,
    )


def plan_memory(config: Config) -> MemoryPlan:
    """Estimate every component the config names. Reads headers, folder sizes and manifests only."""
    return _plan(config, _gather(config), config.llm.n_ctx)


def _shrink_candidates(n_ctx: int) -> list[int]:
    """Contexts below ``n_ctx``, largest first, in steps of 256, down to ``MIN_SHRUNK_CTX``."""
    top = (n_ctx - 1) // CTX_STEP * CTX_STEP
    return list(range(top, MIN_SHRUNK_CTX - 1, -CTX_STEP))


def enforce_budget(config: Config) -> tuple[Config, MemoryPlan]:
    """The config to run with and its plan; ``BudgetError`` (exit 78) when it cannot fit.

    Fits: the config unchanged. Over budget with policy "refuse": ``BudgetError`` whose message is the
    table. With "shrink": the largest smaller ``llm.n_ctx`` that fits, noted in the plan; when even
    ``MIN_SHRUNK_CTX`` does not fit, ``BudgetError`` with the smallest plan's table.
    """
    parts = _gather(config)
    plan = _plan(config, parts, config.llm.n_ctx)
    if plan.fits:
        return config, plan
    if config.memory.policy == "refuse":
        raise BudgetError(f"the components do not fit in memory.budget_mb = {plan.budget_mb}:\n{plan.table()}\n"
                          'raise memory.budget_mb, use smaller models, or set memory.policy = "shrink"')
    if parts.model is None:
        raise BudgetError(f"over budget and the LLM context cannot be shrunk ({parts.llm_note}):\n{plan.table()}")
    candidates = _shrink_candidates(config.llm.n_ctx)
    for n_ctx in candidates:
        note = f"llm: n_ctx {config.llm.n_ctx} → {n_ctx} to fit {config.memory.budget_mb} MB"
        shrunk = _plan(config, parts, n_ctx, (note,))
        if shrunk.fits:
            log.debug("memory: %s", note)  # the caller reports the plan's notes
            shrunk_llm = config.llm.model_copy(update={"n_ctx": n_ctx})
            return config.model_copy(update={"llm": shrunk_llm}), shrunk
    smallest = _plan(config, parts, candidates[-1]) if candidates else plan
    raise BudgetError(
        f"the components do not fit in memory.budget_mb = {plan.budget_mb} even with llm.n_ctx shrunk to "
        f"{smallest.n_ctx}:\n{smallest.table()}\nraise memory.budget_mb or use smaller models"
    )
