"""Numba kernels of the delta clamp (guardrail 5 of the TendedLoop Arena protocol), and the rounding
rule over arrays.

The NumPy twins of the same names are in :mod:`arena_env.economy.guardrail_ref`; the two agree
exactly (integers and booleans).  Rules of :func:`clamp_updates`, per variant ``v`` and parameter
``i`` with a request:

* ``max_delta = delta_window(current, delta_limit_pct)``: the larger of
  ``|current| * delta_limit_pct / 100`` and 1.0
  -- the limit is relative to the CURRENT value, so changes compound over updates
  (10 -> 15 -> 23 at 50%).  The floor of one unit
  keeps small integer values from being frozen forever (at 1 and 50%, 0.5 would round back to 1;
  at 0 the limit would be 0 and a switched-off rule could never come back).
* ``x = clip(requested, current - max_delta, current + max_delta)``
* ``applied = round_half_away(x)`` (round half away from zero: 22.5 -> 23, -2.5 -> -3), then
  clipped to the hard bounds ``[lo[i], hi[i]]``.
* ``clamped = applied != round_half_away(requested)`` (by the delta limit or by a hard bound).
* ``at_max`` ("moved by the full allowed delta"): ``applied`` reached the integer edge of the delta
  window in its direction, i.e. ``applied >= round_half_away(current + max_delta)`` or
  ``applied <= round_half_away(current - max_delta)``.  Since ``max_delta >= 1`` both edges differ
  from ``current``, so ``at_max`` implies a change.  A request exactly at the edge counts (it is not
  clamped but it is a full-size move); a move cut short by a hard bound does not.

Without a request: ``applied = current``, ``clamped = at_max = False``, and ``requested`` is not
read (it may hold NaN).  Requested values that are touched must be finite (callers validate).

``round_half_away`` and ``delta_window`` are the rules of :mod:`agents.rules` (written once, plain
Python), compiled here with :data:`arena_env._numba.jit`.
"""

from __future__ import annotations

from agents import rules
from arena_env._numba import jit

round_half_away = jit(rules.round_half_away)
delta_window = jit(rules.delta_window)
_continuous_target = jit(rules.continuous_target)


@jit
def round_half_away_array(x, out):
    """``out[i] = round_half_away(x[i])`` over 1-D float64 arrays (one call instead of one per value)."""
    for i in range(x.shape[0]):
        out[i] = round_half_away(x[i])


@jit
def continuous_targets(current, action, delta_limit_pct, out):
    """``out[i] = agents.rules.continuous_target(current[i], action[i], delta_limit_pct)`` over 1-D arrays:
    the requests of a continuous action (log-symmetric moves within the delta window)."""
    for i in range(current.shape[0]):
        out[i] = _continuous_target(current[i], action[i], delta_limit_pct)


@jit
def clamp_updates(current, requested, has_request, delta_limit_pct, lo, hi, applied, clamped, at_max):
    """Clamp the proposals of all variants at once (see the module docstring for the rules).

    Args:
        current: int64 (V, P) current values.
        requested: float64 (V, P) proposed values (read only where ``has_request``).
        has_request: bool (V, P), which parameters each proposal touches.
        delta_limit_pct: float, the per-update limit in percent of the current value (5..100).
        lo, hi: int64 (P,) hard bounds.
        applied: int64 (V, P) output, the new values.
        clamped: bool (V, P) output, the applied value differs from the rounded request.
        at_max: bool (V, P) output, the parameter moved by the full allowed delta.
    """
    n_var, n_par = current.shape
    for v in range(n_var):
        for i in range(n_par):
            c = current[v, i]
            if not has_request[v, i]:
                applied[v, i] = c
                clamped[v, i] = False
                at_max[v, i] = False
                continue
            cf = float(c)
            max_delta = delta_window(cf, delta_limit_pct)
            low = cf - max_delta
            high = cf + max_delta
            req = requested[v, i]
            x = req
            if x < low:
                x = low
            elif x > high:
                x = high
            a = int(round_half_away(x))
            if a < lo[i]:
                a = lo[i]
            elif a > hi[i]:
                a = hi[i]
            af = float(a)
            applied[v, i] = a
            clamped[v, i] = af != round_half_away(req)
            at_max[v, i] = af >= round_half_away(high) or af <= round_half_away(low)


