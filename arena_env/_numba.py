"""The one place where Numba options are set.

Every kernel of the package is compiled with :data:`jit` (serial) or :data:`jit_parallel`
(``prange`` over fixed-size chunks); the phases of a kernel with :data:`jit_inline`.  Compilation is
lazy (first call) and cached on disk next to the source, so importing the package compiles nothing.

``fastmath`` stays off: the NumPy twins (``population_ref.py``) must agree with the kernels to 1e-9,
and reassociated floating-point sums would break that as well as bit-identity across thread counts
and the golden trajectories.
"""

from __future__ import annotations

import numbers

import numba

_OPTIONS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

jit = numba.njit(**_OPTIONS)
"""Decorator for serial kernels."""

jit_parallel = numba.njit(parallel=True, **_OPTIONS)
"""Decorator for kernels that use ``numba.prange`` over fixed chunks (thread-count independent)."""

jit_inline = numba.njit(inline="always", **_OPTIONS)
"""Decorator for the phases of a kernel: small functions that Numba inlines into their caller (at
the level of its IR, whatever LLVM's inlining heuristics would decide), so that splitting a kernel
into phases costs no calls.  They stay callable on their own (for tests)."""

prange = numba.prange

PARALLEL_CHUNKSIZE = 4
"""Chunks handed to a thread at a time in ``prange`` loops: dynamic scheduling, so that a thread
slowed down by another process does not hold the other up.  Which thread runs a chunk never changes
a result (every chunk writes its own row)."""


USERS_PER_THREAD = 50_000
"""The default thread count gives each Numba thread at least this many users (see :func:`threads_for`)."""


def threads_for(n_users: int) -> int:
    """The default number of Numba threads for a population of ``n_users``:
    ``min(max(1, n_users // USERS_PER_THREAD), NUMBA_NUM_THREADS)``, i.e. one thread below 100k users.

    Measured on a 2-vCPU VM (``benchmarks/bench_threads.py``, figures in ``benchmarks/README.md``): on
    an idle machine a second thread gains 1.0-1.4x below 100k users and 1.7-2.1x from 100k; when other
    processes hold the cores it loses 2-9x below 20k users and ~1.4x at 50k-200k, and breaks even at
    1M.  Results do not depend on the thread count."""
    return max(1, min(int(n_users) // USERS_PER_THREAD, numba.config.NUMBA_NUM_THREADS))


def check_threads(n) -> int:
    """``n`` as a valid Numba thread count: an integer (Python or NumPy, not a bool) in
    1..``NUMBA_NUM_THREADS``; anything else raises ``ValueError`` naming ``num_threads``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"num_threads: expected an integer 1..{numba.config.NUMBA_NUM_THREADS} or None "
                         f"(None picks by population size), got {type(n).__name__} {n!r}")
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"num_threads={n} is out of range: this machine allows 1..{numba.config.NUMBA_NUM_THREADS} "
            "Numba threads (set NUMBA_NUM_THREADS to raise the ceiling)."
        )
    return n


def set_threads(n: int | None) -> None:
    """Set the number of Numba threads for the calling thread (``None`` keeps the current value) and
    the dynamic scheduling of ``prange`` loops (:data:`PARALLEL_CHUNKSIZE`)."""
    numba.set_parallel_chunksize(PARALLEL_CHUNKSIZE)
    if n is None:
        return
    numba.set_num_threads(check_threads(n))
