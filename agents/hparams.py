"""Hyperparameter validation, written once for every shipped agent.

Each function checks one hyperparameter ``key`` of the agent ``agent`` and returns the value in its
canonical type, or raises :class:`~agents.registry.AgentConfigError` (a ``ValueError``) of the one
form ``"<agent>: <key>: expected <what>, got <value>"``, e.g.
``random: every: expected an integer >= 1, got '3'``.  Agents call them in their constructors, so a
bad value fails when the agent is built, before any play.

* :func:`integer`: an ``int`` (or NumPy integer, or a float with an integral value, ``7.0``); bools,
  strings, fractions, NaN and infinities are refused;
* :func:`real`: a number (bools and strings refused), never NaN, finite unless ``finite=False``
  (for the few hyperparameters where infinity means "no limit");
* :func:`boolean`: ``True`` or ``False`` only (``"no"`` is not false, ``1`` is not true);
* :func:`choice`: one of the allowed values; :func:`choices`: a non-empty list of them.

All take optional bounds (``lo``/``hi``, closed unless ``lo_open``/``hi_open``) and ``optional=True``
to let ``None`` through (returned as None).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .registry import AgentConfigError


def fail(agent: str, key: str, expected: str, value: Any) -> AgentConfigError:
    """The error for ``key`` of ``agent``: ``"<agent>: <key>: expected <expected>, got <value!r>"``."""
    return AgentConfigError(f"{agent}: {key}: expected {expected}, got {value!r}")


def _bounds(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi:g}"
    return ""


def _inside(x: float, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    return ((lo is None or (x > lo if lo_open else x >= lo)) and
            (hi is None or (x < hi if hi_open else x <= hi)))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer(agent: str, key: str, value: Any, lo: int | None = None, hi: int | None = None, *,
            optional: bool = False) -> int | None:
    """``value`` as an ``int`` in ``[lo, hi]`` (see the module docstring)."""
    if optional and value is None:
        return None
    what = "an integer" + _bounds(lo, hi, False, False) + (" or None" if optional else "")
    if not _is_number(value) or not math.isfinite(value) or int(value) != value or not _inside(value, lo, hi,
                                                                                               False, False):
        raise fail(agent, key, what, value)
    return int(value)


def real(agent: str, key: str, value: Any, lo: float | None = None, hi: float | None = None, *,
         lo_open: bool = False, hi_open: bool = False, finite: bool = True, optional: bool = False) -> float | None:
    """``value`` as a ``float`` between ``lo`` and ``hi``, finite unless ``finite=False`` (see the module
    docstring)."""
    if optional and value is None:
        return None
    what = ("a finite number" if finite else "a number") + _bounds(lo, hi, lo_open, hi_open) + (
        " or None" if optional else "")
    if not _is_number(value) or math.isnan(value) or (finite and not math.isfinite(value)) \
            or not _inside(float(value), lo, hi, lo_open, hi_open):
        raise fail(agent, key, what, value)
    return float(value)


def boolean(agent: str, key: str, value: Any) -> bool:
    """``value`` when it is ``True`` or ``False`` (a NumPy bool too), else an error."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail(agent, key, "true or false", value)
    return bool(value)


def choice(agent: str, key: str, value: Any, allowed: Iterable, *, optional: bool = False):
    """``value`` when it is one of ``allowed`` (or None with ``optional``), else an error listing them."""
    allowed = tuple(allowed)
    if optional and value is None:
        return None
    try:
        ok = value in allowed
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok or isinstance(value, (bool, np.bool_)):
        raise fail(agent, key, "one of " + ", ".join(map(repr, allowed)) + (" or None" if optional else ""), value)
    return value


def choices(agent: str, key: str, value: Any, allowed: Iterable) -> tuple:
    """``value`` as a tuple when it is a non-empty list (or tuple) of members of ``allowed``."""
    allowed = tuple(allowed)
    if not isinstance(value, Sequence) or isinstance(value, str) or not value \
            or not all(isinstance(v, str) and v in allowed for v in value):
        raise fail(agent, key, "a non-empty list of " + ", ".join(map(repr, allowed)), value)
    return tuple(value)


def text(agent: str, key: str, value: Any, *, optional: bool = False) -> str | None:
    """``value`` when it is a non-empty string (or None with ``optional``)."""
    if optional and value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(agent, key, "a non-empty string" + (" or None" if optional else ""), value)
    return value
