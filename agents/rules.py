"""The guardrail arithmetic, written once: rounding, the delta window, the continuous action mapping.

Every function here is a small scalar function of floats that uses only :mod:`math`, so it is valid
both as plain Python (agents, the NumPy twins in ``arena_env.economy.guardrail_ref``, the guardrail
pipeline) and as Numba code (``arena_env.economy.guardrail_kernels`` compiles each with
``arena_env._numba.jit``).  None calls another, so each compiles on its own.  This module must not
import ``arena_env`` (the agents package stands alone; the environment imports it).

The rules (``docs/guardrails.md``):

* :func:`round_half_away`: requests become integers by rounding half away from zero
  (2.5 -> 3, -2.5 -> -3, 22.5 -> 23).  Python's ``round`` rounds half to even (22.5 -> 22) and must
  not be used on parameter values.
* :func:`delta_window`: one update may move a parameter by at most
  ``max(|current| * pct / 100, 1)`` (the limit is relative to the current value, so moves compound:
  10 -> 15 -> 23 -> 35 -> 53 at 50%; the floor of one unit lets 0 and 1 move).
* :func:`continuous_target` / :func:`continuous_action`: the economy env's continuous action
  component ``a`` in [-1, 1] and the value it requests, log-symmetric (``a`` and ``-a`` scale by
  reciprocal factors, so uniformly random actions leave the median parameter where it was).
* :func:`config_span`, :func:`unit_of` / :func:`unit_target`: the scale on which the env observes a
  parameter (``log((x + 1) / (t + 1)) / span``, t the tenant value: 0 at the tenant config, +-1 at the
  farther hard bound) and its inverse, the value a ``target``-mode action component requests.
* :func:`requestable`: a value an update may request at all: finite and within float32 range (the
  env's actions are float32).
"""

from __future__ import annotations

import math

__all__ = ["round_half_away", "delta_window", "continuous_target", "continuous_action", "config_span", "unit_of",
           "unit_target", "requestable", "FLOAT32_MAX"]

_EXACT = 4503599627370496.0  # 2**52: every float at least this large is an integer
FLOAT32_MAX = 3.4028234663852886e38  # the largest float32 (numpy.finfo(numpy.float32).max)


def requestable(x: float) -> bool:
    """True when an update may request the value ``x`` (a number): finite and at most :data:`FLOAT32_MAX`
    in magnitude (the economy env's actions are float32; a larger value, an integer too large for a
    float included, has no action).  Bounds and the delta window then clamp it."""
    try:
        x = float(x)
    except OverflowError:
        return False
    return math.isfinite(x) and abs(x) <= FLOAT32_MAX


def round_half_away(x: float) -> float:
    """``x`` rounded half away from zero, as a float (2.5 -> 3.0, -2.5 -> -3.0, 22.5 -> 23.0).

    Exact for every float (``a - floor(a)`` is exact in IEEE arithmetic, so 0.49999999999999994 rounds
    to 0, unlike ``floor(a + 0.5)``); floats of magnitude >= 2**52, infinities and NaN come back
    unchanged.  Use ``int(round_half_away(x))`` for an integer.
    """
    a = abs(x)
    if not a < _EXACT:
        return x + 0.0
    r = float(math.floor(a))
    if a - r >= 0.5:
        r += 1.0
    return r if x >= 0.0 else -r


def delta_window(current: float, pct: float) -> float:
    """The largest change one update may make from ``current``: ``max(|current| * pct / 100, 1)``.

    Computed in this order (``50 * 55 / 100`` is exactly 27.5, ``50 * 0.55`` is not).  The window of a
    value ``c`` is ``[c - delta_window(c, pct), c + delta_window(c, pct)]``, rounded half away from zero.
    """
    return max(abs(current) * pct / 100.0, 1.0)


def continuous_target(current: float, a: float, pct: float) -> float:
    """The value that continuous action component ``a`` (in [-1, 1]) requests for a parameter at ``current``.

    * ``current * (1 + pct / 100) ** a`` when ``current * pct / 100 >= 1`` (log-symmetric: ``a`` and
      ``-a`` multiply by reciprocal factors; ``a = 1`` requests exactly ``current + current * pct / 100``,
      the upper edge of the delta window, and ``a = -1`` requests ``current / (1 + pct / 100)``);
    * ``current + a`` below that (one unit either way, so that 0 and 1 can move; ``a = 1`` is again the
      upper edge of the window, which is one unit there).

    ``a = 0`` requests ``current`` (the env does not even count it as a request).  The request is then
    rounded half away from zero and clamped by the guardrails.  Parameter values are non-negative.
    """
    step = abs(current) * pct / 100.0
    if step < 1.0:
        return current + a
    if a == 1.0:
        return current + step
    return current * (1.0 + pct / 100.0) ** a


def continuous_action(current: float, target: float, pct: float) -> float:
    """The continuous action component that requests ``target`` from ``current`` (the inverse of
    :func:`continuous_target`), clipped to [-1, 1]: a target beyond the delta window gives the edge.

    Returns 0 for ``target == current``; a target at or below 0 from a value in the multiplicative
    range gives -1.  Pass an integer target (round it with :func:`round_half_away` first) so that a
    float32 copy of the action still requests that integer.
    """
    step = abs(current) * pct / 100.0
    if step < 1.0:
        a = target - current
    elif target <= 0.0:
        a = -1.0
    else:
        a = math.log(target / current) / math.log1p(pct / 100.0)
    return min(max(a, -1.0), 1.0)


def config_span(tenant: float, lo: float, hi: float) -> float:
    """The log distance from the tenant value to the farther hard bound, ``max(log((hi + 1) / (t + 1)),
    log((t + 1) / (lo + 1)))``; 1 when both bounds equal the tenant value (the parameter cannot move)."""
    lt = math.log1p(tenant)
    span = max(math.log1p(hi) - lt, lt - math.log1p(lo))
    return span if span > 0.0 else 1.0


def unit_of(x: float, tenant: float, span: float) -> float:
    """A parameter value on the env's observation scale: ``log((x + 1) / (t + 1)) / span`` (0 at the
    tenant value, +-1 at the farther bound; :func:`config_span`)."""
    return (math.log1p(x) - math.log1p(tenant)) / span


def unit_target(u: float, tenant: float, span: float) -> float:
    """The value at ``u`` on the observation scale (the inverse of :func:`unit_of`), ``(t + 1) *
    exp(u * span) - 1``: what a ``target``-mode action component ``u`` in [-1, 1] requests (then
    rounded half away from zero and clamped by the hard bounds and the delta window)."""
    return math.expm1(math.log1p(tenant) + u * span)
