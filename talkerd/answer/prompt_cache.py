"""What llama.cpp has already evaluated, kept useful from one LLM turn to the next.

llama-cpp-python reuses the longest common prefix of the new prompt and the tokens in its KV cache.
Two things defeat that on a kiosk, and this module repairs both before each turn:

- the cache no longer starts with the persona (the memory probe filled the context, a failure, a new
  persona): the state saved right after the persona prefix is restored, so the persona is evaluated
  once per process (per persona) and never again;
- the history was trimmed (its oldest exchange dropped): the prompt now differs right after the persona,
  which would re-evaluate all the history on every turn. The dropped span is removed from the KV cache
  and the rest shifted into its place (llama.cpp's RoPE shift), so only the new question is evaluated.

Not thread-safe: the dialogue calls it from its one turn at a time.
"""
from __future__ import annotations

import ctypes
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MIN_SHIFTED_RUN = 8
"""A dropped span is shifted out only when at least this many cached tokens after it are reused."""


class Reuse(str, enum.Enum):
    PREFIX = "prefix"
    """The cache already began like the prompt."""
    RESTORED = "restored"
    """The persona's saved state was restored."""
    SHIFTED = "shifted"
    """A dropped span was removed from the cache and the rest shifted into place."""


@dataclass(frozen=True)
class SavedState:
    """llama.cpp's state right after the persona prefix (its KV cells; no logits copy of our own)."""

    tokens: tuple[int, ...]
    data: bytes


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


def dropped_span(cached: Sequence[int], prompt: Sequence[int], start: int) -> tuple[int, int] | None:
    """Where ``prompt`` continues ``cached[:start]`` with tokens found later in ``cached``: the end of
    the span that was dropped and how many tokens after it match. None when nothing worth keeping."""
    cached_arr, prompt_arr = np.asarray(cached), np.asarray(prompt)
    if start >= len(prompt_arr) or start >= len(cached_arr):
        return None
    best: tuple[int, int] | None = None
    for end in np.flatnonzero(cached_arr[start + 1:] == prompt_arr[start]) + start + 1:
        run = common_prefix(cached_arr[end:], prompt_arr[start:])
        if run >= MIN_SHIFTED_RUN and (best is None or run > best[1]):
            best = (int(end), run)
    return best


class PromptCache:
    def __init__(self, llm) -> None:
        """``llm``: a ``llama_cpp.Llama``."""
        self._llm = llm
        self._saved: SavedState | None = None

    @property
    def prefix(self) -> tuple[int, ...]:
        return self._saved.tokens if self._saved is not None else ()

    def prime(self, prefix: Sequence[int]) -> None:
        """Evaluate ``prefix`` (the persona) from position 0 and save the state after it."""
        llm = self._llm
        llm.reset()
        llm.eval(list(prefix))
        self._saved = SavedState(tuple(int(t) for t in prefix), _state_bytes(llm))
        log.info("persona prefix evaluated and saved: %d tokens, %d KiB of state", len(prefix),
                 len(self._saved.data) // 1024, extra={"stage": "llm"})

    def prepare(self, prompt: Sequence[int], prefix: Sequence[int], *, allow_shift: bool = True) -> Reuse:
        """Make the cache begin with as much of ``prompt`` as it can; ``prefix`` is its persona part (a new
        persona is primed here, on the turn thread). ``allow_shift`` false: reuse the common prefix only
        (tokens after a dropped span were evaluated attending to it)."""
        if tuple(prefix) != self.prefix:
            self.prime(prefix)
        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens]
        if common_prefix(cached, prefix) < len(prefix):
            self._restore()
            return Reuse.RESTORED
        start = common_prefix(cached, prompt)
        span = dropped_span(cached, prompt, start) if allow_shift else None
        if not allow_shift or span is None or not _can_shift(llm):
            return Reuse.PREFIX
        end, run = span
        self._shift_out(start, end, run, prompt)
        return Reuse.SHIFTED

    def evaluate(self, tokens: Sequence[int]) -> int:
        """Make the cache hold exactly ``tokens`` (after ``prepare``): what follows them is removed (it
        may be an earlier visitor's), what is missing evaluated. Returns how many were evaluated."""
        llm = self._llm
        keep = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        llm._ctx.kv_cache_seq_rm(0, keep, -1)
        llm.n_tokens = keep
        llm._requires_eval = True
        if keep < len(tokens):
            llm.eval(list(tokens[keep:]))
        return len(tokens) - keep

    def _restore(self) -> None:
        llm, saved = self._llm, self._saved
        buffer = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
        import llama_cpp

        if llama_cpp.llama_state_set_data(llm._ctx.ctx, buffer, len(saved.data)) != len(saved.data):
            raise RuntimeError("llama.cpp refused the saved persona state")
        n = len(saved.tokens)
        llm.input_ids[:n] = saved.tokens
        llm.n_tokens = n
        llm._requires_eval = True  # the logits are refreshed by evaluating the prompt's rest
        log.debug("persona state restored (%d tokens)", n, extra={"stage": "llm"})

    def _shift_out(self, start: int, end: int, run: int, prompt: Sequence[int]) -> None:
        """Remove cached positions [start, end) and move the ``run`` tokens after them to ``start``."""
        llm = self._llm
        ctx = llm._ctx
        width = end - start
        ctx.kv_cache_seq_rm(0, start, end)
        ctx.kv_cache_seq_shift(0, end, end + run, -width)
        ctx.kv_cache_seq_rm(0, start + run, -1)
        llm.input_ids[start:start + run] = prompt[start:start + run]
        llm.n_tokens = start + run
        llm._requires_eval = True
        log.debug("dropped %d cached tokens at %d, kept %d after them", width, start, run, extra={"stage": "llm"})


def _state_bytes(llm) -> bytes:
    import llama_cpp

    size = llama_cpp.llama_state_get_size(llm._ctx.ctx)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_get_data(llm._ctx.ctx, buffer, size)
    return bytes(buffer[:written])


def _can_shift(llm) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_memory_can_shift(llm._ctx.memory))
