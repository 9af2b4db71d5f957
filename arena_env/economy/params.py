"""The ten economy parameters: names, defaults, hard bounds, and the resolution chain.

The order of :data:`PARAM_NAMES` is the order of every parameter vector in the package (action
components, observation slots, kernel arrays), and follows the TendedLoop Arena protocol's table:
``scanXp`` first, ``feedbackDailyCap`` last.

Resolution chain (a shallow merge, later layers win key by key)::

    global defaults (DEFAULTS)  ->  tenant config (scenario ``tenant``)  ->  variant overrides

All values are integers.  Hard bounds are the last step of the guardrail pipeline; a scenario may
narrow them (``guardrails.bounds``) but not widen them past :data:`ABSOLUTE_BOUNDS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PARAM_NAMES: tuple[str, ...] = (
    "scanXp",
    "feedbackXp",
    "issueReportXp",
    "statusReportXp",
    "photoXp",
    "firstScanOfDayXp",
    "streakBonusPerDay",
    "streakBonusCap",
    "scanDailyCap",
    "feedbackDailyCap",
)
N_PARAMS = len(PARAM_NAMES)
PARAM_INDEX = {name: i for i, name in enumerate(PARAM_NAMES)}

DEFAULTS: dict[str, int] = {
    "scanXp": 10,
    "feedbackXp": 15,
    "issueReportXp": 25,
    "statusReportXp": 20,
    "photoXp": 10,
    "firstScanOfDayXp": 15,
    "streakBonusPerDay": 5,
    "streakBonusCap": 50,
    "scanDailyCap": 20,
    "feedbackDailyCap": 10,
}

# Widest bounds a scenario may set.  XP values may reach 0 (a rule switched off); the caps keep at
# least one counted action per day.  Upper bounds are 20x the defaults.
ABSOLUTE_BOUNDS: dict[str, tuple[int, int]] = {
    "scanXp": (0, 200),
    "feedbackXp": (0, 300),
    "issueReportXp": (0, 500),
    "statusReportXp": (0, 400),
    "photoXp": (0, 200),
    "firstScanOfDayXp": (0, 300),
    "streakBonusPerDay": (0, 100),
    "streakBonusCap": (0, 1000),
    "scanDailyCap": (1, 100),
    "feedbackDailyCap": (1, 100),
}

DEFAULT_VECTOR = np.array([DEFAULTS[k] for k in PARAM_NAMES], dtype=np.int64)


def resolve(*layers: Mapping[str, int] | None) -> dict[str, int]:
    """Shallow-merge parameter layers over the global defaults (later layers win).

    Raises ``KeyError`` naming the unknown key, and ``ValueError`` for a value that is not an integer.
    """
    out = dict(DEFAULTS)
    for layer in layers:
        if not layer:
            continue
        for key, value in layer.items():
            if key not in PARAM_INDEX:
                raise KeyError(f"unknown economy parameter {key!r}; expected one of {', '.join(PARAM_NAMES)}")
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError(f"economy parameter {key!r} must be an integer, got {value!r}")
            out[key] = int(value)
    return out


def to_vector(config: Mapping[str, int]) -> np.ndarray:
    """A config dict (all ten keys) as an int64 vector in :data:`PARAM_NAMES` order."""
    return np.array([int(config[k]) for k in PARAM_NAMES], dtype=np.int64)


def to_dict(vector: np.ndarray) -> dict[str, int]:
    """An int vector in :data:`PARAM_NAMES` order as a config dict."""
    return {k: int(v) for k, v in zip(PARAM_NAMES, np.asarray(vector).tolist())}
