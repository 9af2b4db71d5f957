"""The agent protocol: what an agent sees, what it may answer, and what it is told afterwards.

An agent is any object with three methods (a :class:`typing.Protocol`, no base class needed)::

    reset(seed)            # start an episode; all randomness comes from this seed
    act(context) -> Update | None
    update(outcome)        # the reward and the guardrail outcome of the last decision

The same agent runs, without changes, in the economy environment (parallel or single-agent,
through :mod:`arena_env.wrappers.agents`) and later over the TendedLoop Arena HTTP protocol and in
the replay environment: the types below follow the protocol's ``signals``, ``variant`` and
``decision`` payloads, not any environment's internals.  This module imports nothing of the
environments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

PARAM_NAMES: tuple[str, ...] = (
    "scanXp", "feedbackXp", "issueReportXp", "statusReportXp", "photoXp",
    "firstScanOfDayXp", "streakBonusPerDay", "streakBonusCap", "scanDailyCap", "feedbackDailyCap",
)
"""The ten economy parameters, in the protocol's order."""

DEFAULTS: Mapping[str, int] = {
    "scanXp": 10, "feedbackXp": 15, "issueReportXp": 25, "statusReportXp": 20, "photoXp": 10,
    "firstScanOfDayXp": 15, "streakBonusPerDay": 5, "streakBonusCap": 50, "scanDailyCap": 20,
    "feedbackDailyCap": 10,
}
"""The protocol's global defaults."""

METRIC_NAMES: tuple[str, ...] = (
    "SCAN_FREQUENCY", "XP_VELOCITY", "RETENTION_RATE", "MISSION_COMPLETION", "STREAK_LENGTH",
    "FEEDBACK_QUALITY",
)
"""The six engagement metrics."""


@dataclass(frozen=True)
class Metric:
    """One metric of one variant: ``{value, stdDev, sampleSize, confidence}`` in the protocol."""

    value: float
    std_dev: float
    sample_size: int
    confidence: str  # "low" (n < 10), "medium" (n < 30) or "high"

    @classmethod
    def from_payload(cls, d: Mapping[str, Any]) -> Metric:
        return cls(float(d["value"]), float(d["stdDev"]), int(d["sampleSize"]), str(d["confidence"]))


@dataclass(frozen=True)
class Signals:
    """The protocol's ``GET /signals`` payload, plus the control's metrics where they are known."""

    enrolled: int
    active_today: int
    active_7d: int
    total_scans: int
    experiment_days: int
    metrics: Mapping[str, Metric]
    control: Mapping[str, Metric] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, d: Mapping[str, Any], control: Mapping[str, Any] | None = None) -> Signals:
        return cls(int(d["enrolled"]), int(d["activeToday"]), int(d["active7d"]), int(d["totalScans"]),
                   int(d["experimentDays"]), {k: Metric.from_payload(v) for k, v in d["metrics"].items()},
                   {k: Metric.from_payload(v) for k, v in (control or {}).items()})


@dataclass(frozen=True)
class Context:
    """Everything an agent may look at when it decides.

    Attributes:
        signals: the variant's signals (and the control's metrics).
        config: the variant's current full config, parameter name -> int.
        day: the experiment day of the decision.
        delta_limit_pct: the delta clamp, percent of the current value per accepted update.
        update_interval_min: the rate limit, minutes between accepted updates.
        minute: the decision's time in minutes (the guardrails' clock).
        next_allowed_update: the first minute an update may be accepted (None: now).
        breaker_open, anomaly, running: guardrail and lifecycle state of the variant.
        presets: named configurations (the arms of bandit agents), name -> full config.
        vector: the environment's numeric observation (for learned policies), or None.
        tenant: the tenant config (the control's), parameter name -> int; empty when unknown.
        bounds: the hard bounds, parameter name -> (lo, hi); empty when unknown.
    """

    signals: Signals
    config: Mapping[str, int]
    day: int
    delta_limit_pct: float = 50.0
    update_interval_min: int = 60
    minute: float = 0.0
    next_allowed_update: float | None = None
    breaker_open: bool = False
    anomaly: bool = False
    running: bool = True
    presets: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    vector: Any = None
    tenant: Mapping[str, int] = field(default_factory=dict)
    bounds: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def can_update(self) -> bool:
        """True when a proposal made now could be accepted (running, breaker closed, rate limit over)."""
        return self.running and not self.breaker_open and (
            self.next_allowed_update is None or self.minute >= self.next_allowed_update)


@dataclass(frozen=True)
class Update:
    """A proposal: the parameters to change (the protocol's ``economyOverrides``) and why."""

    overrides: Mapping[str, int]
    reasoning: str = ""


@dataclass(frozen=True)
class Outcome:
    """What followed an agent's decision.

    Attributes:
        reward: the environment's reward for the agent since its last decision.
        decision: the guardrails' decision record in the protocol's shape (``accepted``,
            ``appliedConfig``, ``clampedDeltas``, ``rejectionReason``, ``nextAllowedUpdate``, ...),
            or None when the agent held.
        day: the day the outcome was observed.
    """

    reward: float
    decision: Mapping[str, Any] | None = None
    day: int = 0

    @property
    def accepted(self) -> bool | None:
        return None if self.decision is None else bool(self.decision["accepted"])

    @property
    def rejection(self) -> str | None:
        return None if self.decision is None else self.decision.get("rejectionReason")

    @property
    def clamped(self) -> Mapping[str, Any]:
        return {} if self.decision is None else self.decision.get("clampedDeltas") or {}


@runtime_checkable
class Agent(Protocol):
    """An agent: see the module docstring."""

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, context: Context) -> Update | None: ...

    def update(self, outcome: Outcome) -> None: ...
