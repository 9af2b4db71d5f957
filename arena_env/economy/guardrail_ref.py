"""NumPy twins of :mod:`arena_env.economy.guardrail_kernels`: same names, same signatures, same results.

``backend="numpy"`` runs the environment's guardrail arithmetic on these.  They call the rules of
:mod:`agents.rules` directly (the kernels call compiled copies of the same functions), so the twins
share the rules with the kernels, not the loops.
"""

from __future__ import annotations

import numpy as np

from agents import rules

round_half_away = np.vectorize(rules.round_half_away, otypes=[np.float64])
"""Element-wise :func:`agents.rules.round_half_away` over arrays (float64)."""


def round_half_away_array(x, out):
    """Twin of :func:`arena_env.economy.guardrail_kernels.round_half_away_array`."""
    out[:] = round_half_away(x)


def continuous_targets(current, action, delta_limit_pct, out):
    """Twin of :func:`arena_env.economy.guardrail_kernels.continuous_targets`."""
    out[:] = [rules.continuous_target(c, a, delta_limit_pct) for c, a in zip(current, action)]


def clamp_updates(current, requested, has_request, delta_limit_pct, lo, hi, applied, clamped, at_max):
    """Twin of :func:`arena_env.economy.guardrail_kernels.clamp_updates`; fills the three outputs.

    A plain Python loop over the scalars that calls the rules of :mod:`agents.rules` directly (the
    kernel calls their compiled copies): it shares the rules with the kernel, not the loop.
    """
    n_var, n_par = np.shape(current)
    for v in range(n_var):
        for i in range(n_par):
            c = int(current[v, i])
            if not has_request[v, i]:  # untouched entries are never read (they may be NaN)
                applied[v, i], clamped[v, i], at_max[v, i] = c, False, False
                continue
            req = float(requested[v, i])
            max_delta = rules.delta_window(float(c), float(delta_limit_pct))
            low, high = c - max_delta, c + max_delta
            a = int(rules.round_half_away(min(max(req, low), high)))
            a = min(max(a, int(lo[i])), int(hi[i]))
            applied[v, i] = a
            clamped[v, i] = a != rules.round_half_away(req)
            at_max[v, i] = a >= rules.round_half_away(high) or a <= rules.round_half_away(low)
