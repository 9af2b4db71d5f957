"""NumPy twin of :mod:`._guard_kernels` (same name, same signature, same results exactly).

See :mod:`._guard_kernels` for the clamp rules.  :func:`round_half_away` is also used by
:mod:`arena_env.economy.guardrails` to round requests (hold detection, decision records).
"""

from __future__ import annotations

import numpy as np

__all__ = ["clamp_updates"]


def round_half_away(x):
    """Round floats half away from zero, exactly (2.5 -> 3, -2.5 -> -3); returns float64."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    r = np.floor(a)
    r = np.where(a - r >= 0.5, r + 1.0, r)
    return np.where(x >= 0.0, r, -r)


def clamp_updates(current, requested, has_request, delta_limit_pct, lo, hi, applied, clamped, at_max):
    """NumPy twin of :func:`arena_env.economy.kernels.clamp_updates`; fills the three outputs."""
    cur = np.asarray(current, dtype=np.float64)
    has = np.asarray(has_request, dtype=bool)
    req = np.where(has, requested, cur)  # untouched entries are never read (they may be NaN)
    max_delta = np.maximum(np.abs(cur) * delta_limit_pct / 100.0, 1.0)
    low = cur - max_delta
    high = cur + max_delta
    a = round_half_away(np.minimum(np.maximum(req, low), high)).astype(np.int64)
    a = np.minimum(np.maximum(a, lo), hi)
    af = a.astype(np.float64)
    applied[...] = np.where(has, a, current)
    clamped[...] = has & (af != round_half_away(req))
    at_max[...] = has & ((af >= round_half_away(high)) | (af <= round_half_away(low)))
