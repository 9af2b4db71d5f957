"""The two backends of the environment: the functions one day of ``env.step`` calls.

* ``"numba"``: the Numba kernels, :mod:`~arena_env.economy.population` (the population step and the
  payout) and :mod:`~arena_env.economy.guardrail_kernels` (rounding and the delta clamp);
* ``"numpy"``: their NumPy twins, :mod:`~arena_env.economy.population_ref` and
  :mod:`~arena_env.economy.guardrail_ref`: the same phases, vectorised over users.

Both use the same statistics, :mod:`~arena_env.economy.stats_kernels` (statistics are not the
population model: one implementation, checked against SciPy by the tests).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from . import stats_kernels

NAMES = ("numba", "numpy")


@dataclasses.dataclass(frozen=True)
class Backend:
    """The functions of one backend (each with the signature of its Numba kernel)."""

    name: str
    step_population: Callable
    pay_out: Callable
    clamp_updates: Callable
    continuous_targets: Callable
    round_half_away_array: Callable
    compare_to_control: Callable


@functools.cache
def get(name: str) -> Backend:
    """The backend called ``name`` (one of :data:`NAMES`); the NumPy twins are imported on demand."""
    if name == "numba":
        from . import guardrail_kernels as guard
        from . import population as pop
    elif name == "numpy":
        from . import guardrail_ref as guard
        from . import population_ref as pop
    else:
        raise ValueError(f"backend={name!r}: expected one of {', '.join(NAMES)}")
    return Backend(name, pop.step_population, pop.pay_out, guard.clamp_updates, guard.continuous_targets,
                   guard.round_half_away_array, stats_kernels.compare_to_control)
