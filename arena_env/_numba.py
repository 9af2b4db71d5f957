"""The one place where Numba options are set.

Every kernel of the package is compiled with :data:`jit` (serial) or :data:`jit_parallel`
(``prange`` over fixed-size chunks).  Compilation is lazy (first call) and cached on disk next to
the source, so importing the package compiles nothing.

``fastmath`` stays off: the NumPy twins in ``reference.py`` must agree with the kernels to 1e-9, and
reassociated floating-point sums would break that as well as bit-identity across thread counts.
"""

from __future__ import annotations

import numba

_OPTIONS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

jit = numba.njit(**_OPTIONS)
"""Decorator for serial kernels."""

jit_parallel = numba.njit(parallel=True, **_OPTIONS)
"""Decorator for kernels that use ``numba.prange`` over fixed chunks (thread-count independent)."""

prange = numba.prange

PARALLEL_CHUNKSIZE = 4
"""Chunks handed to a thread at a time in ``prange`` loops: dynamic scheduling, so that a thread
slowed down by another process does not hold the other up.  Which thread runs a chunk never changes
a result (every chunk writes its own row)."""


def set_threads(n: int | None) -> None:
    """Set the number of Numba threads for the calling thread (``None`` keeps the current value) and
    the dynamic scheduling of ``prange`` loops (:data:`PARALLEL_CHUNKSIZE`)."""
    numba.set_parallel_chunksize(PARALLEL_CHUNKSIZE)
    if n is None:
        return
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"num_threads={n} is out of range: this machine allows 1..{numba.config.NUMBA_NUM_THREADS} "
            "Numba threads (set NUMBA_NUM_THREADS to raise the ceiling)."
        )
    numba.set_num_threads(n)
