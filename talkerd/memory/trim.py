"""Give the C heap's free memory back to the system (glibc ``malloc_trim``).

glibc keeps memory a native library freed for its next allocations; after a large release (a fresh
vosk recogniser lets its whole graph cache go) that memory would stay resident for good. Elsewhere
(musl, macOS) there is nothing to call and nothing is done.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)


def release_free_memory() -> bool:
    """True when glibc was asked to return free heap memory to the system."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        log.debug("no malloc_trim here (not glibc): freed memory stays with the allocator")
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
