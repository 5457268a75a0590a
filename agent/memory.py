"""Give freed heap back to the operating system (glibc's malloc_trim).

Segments are 12 MB byte strings that live for seconds; glibc raises its mmap threshold after the first
ones are freed and then keeps such blocks in the heap, so the process's resident size stays at its
high-water mark long after the data is gone. On a 1 GB Pi that memory belongs to the rest of the
system. Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
    _trim.restype = ctypes.c_int
except (OSError, AttributeError):  # not glibc
    _trim = None


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when glibc did release something."""
    return bool(_trim(0)) if _trim is not None else False
