"""Controllers: the TendedLoop example strategies that steer the economy from its signals.

* ``rule``: threshold rules (the TendedLoop quick start);
* ``momentum``: keep moving a parameter while the reward improves, reverse when it worsens;
* ``multi_metric``: weighted health score against metric targets, moves the most-off lever group;
* ``pid``: PID control of one metric toward a setpoint through one parameter;
* ``safety``: a wrapper around any agent (cooldown after a rejection, drift dampening, anomaly
  cooldown), also usable directly as ``Safety(agent)``.

Every controller proposes only when the guardrails could accept (``context.can_update``), so it
never collects ``RATE_LIMITED`` rejections, and moves parameters in units of the delta limit
(:func:`step_units`, :func:`move_update`): a move of fraction ``f`` changes a parameter by ``f`` times
the largest change the delta clamp allows.  Randomness (none of these needs any) would come only
from the seed given to ``reset``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from . import hparams, rules
from .protocol import METRIC_NAMES, PARAM_NAMES, Context, Outcome, Update
from .registry import make, register

CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}


# ----------------------------------------------------------------------------------- shared helpers
def round_half_away(x: float) -> int:
    """Round half away from zero (the guardrails' rounding, :func:`agents.rules.round_half_away`)."""
    return int(rules.round_half_away(float(x)))


def step_units(current: float, delta_limit_pct: float) -> float:
    """The largest change the delta clamp allows from ``current``: ``delta_limit_pct`` % of it, >= 1 unit
    (:func:`agents.rules.delta_window`)."""
    return rules.delta_window(float(current), float(delta_limit_pct))


def free_room(current: int, delta_limit_pct: float) -> tuple[int, int]:
    """(up, down): the largest integer moves from ``current`` that are NOT full-delta moves.

    The guardrails count an applied value at ``round(current +/- step)`` as a max-delta move (the
    anomaly counter); anything strictly inside is free.  Either may be 0 (e.g. at small values).
    """
    md = step_units(current, delta_limit_pct)
    up = round_half_away(current + md) - current - 1
    down = current - round_half_away(current - md) - 1
    return max(up, 0), max(down, 0)


def target_for(context: Context, name: str, fraction: float) -> int:
    """The value of parameter ``name`` after a move of ``fraction`` (clipped to [-1, 1]) of its delta limit."""
    cur = context.config[name]
    f = min(max(float(fraction), -1.0), 1.0)
    return round_half_away(cur + f * step_units(cur, context.delta_limit_pct))


def move_update(context: Context, moves: Mapping[str, float], reasoning: str = "") -> Update | None:
    """An :class:`Update` moving each parameter by its fraction of the delta limit (None if nothing moves)."""
    out = {}
    for name, f in moves.items():
        target = target_for(context, name, f)
        if target != context.config[name]:
            out[name] = target
    return Update(out, reasoning) if out else None


def confident_value(context: Context, metric: str, min_confidence: str = "medium") -> float | None:
    """The variant's ``metric`` value, or None when missing or its confidence is below ``min_confidence``."""
    m = context.signals.metrics.get(metric)
    if m is None or CONFIDENCE_RANK.get(m.confidence, 0) < CONFIDENCE_RANK[min_confidence]:
        return None
    return m.value


def _step(agent: str, step) -> float:
    return hparams.real(agent, "step", step, 0.0, 1.0, lo_open=True)


def _confidence(agent: str, value) -> str:
    return hparams.choice(agent, "min_confidence", value, CONFIDENCE_RANK)


# ------------------------------------------------------------------------------------------- rule
@register("rule")
class Rule:
    """Threshold rules, as in the TendedLoop quick start.

    At most every ``every`` days (and only when an update could be accepted), on metrics of at least
    ``min_confidence``:

    * scan frequency below ``scan_low`` -> raise ``scanXp``;
    * feedback quality below ``feedback_low`` -> raise ``feedbackXp``;
    * retention above ``retention_high`` and XP velocity above ``xp_velocity_high`` -> trim
      ``scanXp`` and ``feedbackXp`` (users stay anyway; cut the inflation).

    Each move is ``step`` (0..1] of the delta limit.  Hyperparameters: ``scan_low`` (1.5 scans per
    user per day), ``feedback_low`` (0.15), ``retention_high`` (0.85), ``xp_velocity_high`` (60 XP
    per user per day), ``step`` (0.5), ``every`` (3 days), ``min_confidence`` ("medium").
    Use as a transparent, explainable baseline and as a template for hand-written policies.
    """

    def __init__(self, scan_low: float = 1.5, feedback_low: float = 0.15, retention_high: float = 0.85,
                 xp_velocity_high: float = 60.0, step: float = 0.5, every: int = 3,
                 min_confidence: str = "medium"):
        self.scan_low = hparams.real("rule", "scan_low", scan_low, 0.0)
        self.feedback_low = hparams.real("rule", "feedback_low", feedback_low, 0.0, 1.0)
        self.retention_high = hparams.real("rule", "retention_high", retention_high, 0.0, 1.0)
        self.xp_velocity_high = hparams.real("rule", "xp_velocity_high", xp_velocity_high, 0.0)
        self.step, self.every = _step("rule", step), hparams.integer("rule", "every", every, 1)
        self.min_confidence = _confidence("rule", min_confidence)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.last_day: int | None = None

    def act(self, context: Context) -> Update | None:
        if not context.can_update or (self.last_day is not None and context.day - self.last_day < self.every):
            return None
        sf = confident_value(context, "SCAN_FREQUENCY", self.min_confidence)
        fq = confident_value(context, "FEEDBACK_QUALITY", self.min_confidence)
        rr = confident_value(context, "RETENTION_RATE", self.min_confidence)
        xv = confident_value(context, "XP_VELOCITY", self.min_confidence)
        moves: dict[str, float] = {}
        why = []
        if sf is not None and sf < self.scan_low:
            moves["scanXp"] = self.step
            why.append(f"scan frequency {sf:.2f} < {self.scan_low}: raise scanXp")
        if fq is not None and fq < self.feedback_low:
            moves["feedbackXp"] = self.step
            why.append(f"feedback quality {fq:.2f} < {self.feedback_low}: raise feedbackXp")
        if not moves and rr is not None and xv is not None and rr > self.retention_high \
                and xv > self.xp_velocity_high:
            moves = {"scanXp": -self.step, "feedbackXp": -self.step}
            why.append(f"retention {rr:.2f} > {self.retention_high} and XP velocity {xv:.1f} > "
                       f"{self.xp_velocity_high}: trim")
        update = move_update(context, moves, "; ".join(why))
        if update is not None:
            self.last_day = context.day
        return update

    def update(self, outcome: Outcome) -> None:
        if outcome.accepted is False:
            self.last_day = None  # a rejected proposal did not change anything: free to retry


# --------------------------------------------------------------------------------------- momentum
@register("momentum")
class Momentum:
    """Keeps moving a parameter in the direction that last improved the reward; reverses when it worsens.

    The parameters in ``params`` are moved in turn, one per move, every ``every`` days (when an update
    could be accepted) by ``step`` of the delta limit, each in its own direction (initially
    ``+1``).  The reward per day collected since a move is compared with the reward per day of the
    period before it; if it is lower, that parameter's direction flips for its next move.
    Hyperparameters: ``params`` (default ``["scanXp", "feedbackXp"]``), ``step`` (0.3), ``every``
    (3 days).  Use as a model-free hill climber when the reward responds smoothly and quickly to a
    few levers; it chases noise on small populations.
    """

    def __init__(self, params: Sequence[str] = ("scanXp", "feedbackXp"), step: float = 0.3, every: int = 3):
        self.params = hparams.choices("momentum", "params", params, PARAM_NAMES)
        self.step, self.every = _step("momentum", step), hparams.integer("momentum", "every", every, 1)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.direction = {p: 1.0 for p in self.params}
        self.turn = 0
        self.last: str | None = None          # the parameter moved last
        self.last_day: int | None = None
        self.before: float | None = None      # reward per day of the period before the last move
        self.acc, self.days = 0.0, 0          # reward since the last move (or since the start)
        self.pending: str | None = None

    def act(self, context: Context) -> Update | None:
        if not context.can_update or (self.last_day is not None and context.day - self.last_day < self.every):
            return None
        now = self.acc / self.days if self.days else 0.0
        if self.last is not None and self.before is not None and now < self.before:
            self.direction[self.last] = -self.direction[self.last]
        self.before = None  # each comparison is made once
        name = self.params[self.turn % len(self.params)]
        update = move_update(context, {name: self.direction[name] * self.step},
                             f"momentum: {name} {'up' if self.direction[name] > 0 else 'down'} "
                             f"(reward/day {now:.4f})")
        if update is None:  # cannot move this way (e.g. at 0): try the other direction next time
            self.direction[name] = -self.direction[name]
            self.turn += 1
            return None
        self.pending = name
        self.last_day = context.day
        return update

    def update(self, outcome: Outcome) -> None:
        if self.pending is not None:
            name, self.pending = self.pending, None
            if outcome.accepted:
                self.before = self.acc / self.days if self.days else None
                self.last, self.turn = name, self.turn + 1
                self.acc, self.days = 0.0, 0
            else:
                self.last_day = None
        self.acc += outcome.reward
        self.days += 1


# ----------------------------------------------------------------------------------- multi_metric
DEFAULT_TARGETS = {"SCAN_FREQUENCY": 1.8, "RETENTION_RATE": 0.85, "FEEDBACK_QUALITY": 0.22, "XP_VELOCITY": 55.0}
DEFAULT_WEIGHTS = {"SCAN_FREQUENCY": 0.4, "RETENTION_RATE": 3.5, "FEEDBACK_QUALITY": 2.5, "XP_VELOCITY": 0.5}
DEFAULT_GROUPS = {
    "SCAN_FREQUENCY": ["scanXp", "firstScanOfDayXp"],
    "RETENTION_RATE": ["streakBonusPerDay", "firstScanOfDayXp"],
    "FEEDBACK_QUALITY": ["feedbackXp", "photoXp"],
    "XP_VELOCITY": ["scanXp", "feedbackXp", "firstScanOfDayXp"],
    "STREAK_LENGTH": ["streakBonusPerDay", "streakBonusCap"],
    "MISSION_COMPLETION": ["issueReportXp", "statusReportXp"],
}


@register("multi_metric")
class MultiMetric:
    """Weighted health targets over several metrics; moves the parameter group of the most-off metric.

    For every metric in ``targets`` with at least ``min_confidence``, the weighted relative gap is
    ``w * (target - value) / target``; health is ``1 - sum(w * min(|gap|, 1)) / sum(w)``.  Every
    ``every`` days (when an update could be accepted) the metric with the largest weighted gap above
    ``tolerance`` moves its lever group (``groups[metric]``, parameters that raise the metric) by
    ``step`` of the delta limit: up when the metric is below target, down when above (so an XP
    velocity above its target trims XP).  Hyperparameters: ``targets`` (SCAN_FREQUENCY 1.8,
    RETENTION_RATE 0.85, FEEDBACK_QUALITY 0.22, XP_VELOCITY 55), ``weights`` (0.4, 3.5, 2.5, 0.5; the
    TendedLoop composite plus an inflation term), ``groups`` (metric -> parameters), ``tolerance``
    (0.05), ``step`` (0.4), ``every`` (2 days), ``min_confidence`` ("medium").  Use when the
    operator states targets per metric rather than one scalar objective.
    """

    def __init__(self, targets: Mapping[str, float] | None = None, weights: Mapping[str, float] | None = None,
                 groups: Mapping[str, Sequence[str]] | None = None, tolerance: float = 0.05,
                 step: float = 0.4, every: int = 2, min_confidence: str = "medium"):
        for key, given in (("targets", targets), ("weights", weights), ("groups", groups)):
            if given is not None and (not isinstance(given, Mapping) or (key == "targets" and not given)):
                raise hparams.fail("multi_metric", key, "a non-empty mapping metric -> value" if key == "targets"
                                   else "a mapping metric -> value", given)
        targets = dict(DEFAULT_TARGETS if targets is None else targets)
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        groups = {**DEFAULT_GROUPS, **(groups or {})}
        for key, names in (("targets", targets), ("weights", weights), ("groups", groups)):
            for m in names:
                hparams.choice("multi_metric", key, m, METRIC_NAMES)
        self.targets = {m: hparams.real("multi_metric", f"targets.{m}", t, 0.0, lo_open=True)
                        for m, t in targets.items()}
        self.weights = {m: hparams.real("multi_metric", f"weights.{m}", weights.get(m, 1.0), 0.0) for m in targets}
        self.groups = {m: hparams.choices("multi_metric", f"groups.{m}", groups.get(m), PARAM_NAMES)
                       for m in targets}
        self.tolerance = hparams.real("multi_metric", "tolerance", tolerance, 0.0)
        self.step, self.every = _step("multi_metric", step), hparams.integer("multi_metric", "every", every, 1)
        self.min_confidence = _confidence("multi_metric", min_confidence)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.last_day: int | None = None
        self.health: float | None = None

    def gaps(self, context: Context) -> dict[str, float]:
        """Weighted signed relative gaps (positive: below target) of the confident metrics."""
        out = {}
        for m, t in self.targets.items():
            v = confident_value(context, m, self.min_confidence)
            if v is not None:
                out[m] = self.weights[m] * (t - v) / t
        return out

    def act(self, context: Context) -> Update | None:
        if not context.can_update or (self.last_day is not None and context.day - self.last_day < self.every):
            return None
        gaps = self.gaps(context)
        if not gaps:
            return None
        total = sum(self.weights[m] for m in gaps) or 1.0
        self.health = 1.0 - sum(min(abs(g), self.weights[m]) for m, g in gaps.items()) / total
        worst = max(sorted(gaps), key=lambda m: abs(gaps[m]))
        if abs(gaps[worst]) <= self.tolerance:
            return None
        sign = 1.0 if gaps[worst] > 0 else -1.0
        update = move_update(context, {p: sign * self.step for p in self.groups[worst]},
                             f"health {self.health:.3f}; {worst} {'below' if sign > 0 else 'above'} target "
                             f"{self.targets[worst]} (weighted gap {gaps[worst]:+.3f})")
        if update is not None:
            self.last_day = context.day
        return update

    def update(self, outcome: Outcome) -> None:
        if outcome.accepted is False:
            self.last_day = None


# -------------------------------------------------------------------------------------------- pid
@register("pid")
class PID:
    """PID control of one metric toward a setpoint by adjusting one parameter.

    On every decision where an update could be accepted and ``metric`` has at least
    ``min_confidence``, with the relative error ``e = (setpoint - value) / setpoint``::

        u = kp * e + ki * I + kd * (e - e_previous)      # I: the sum of past errors
        parameter += u * parameter, clipped to the delta limit

    Anti-windup: the integral is frozen while the output saturates in the error's direction, and
    ``|I| <= integral_limit``.  Hyperparameters: ``metric`` ("SCAN_FREQUENCY"), ``param``
    ("scanXp"), ``setpoint`` (2.0), ``kp`` 0.5, ``ki`` 0.05, ``kd`` 0.1 (the TendedLoop example's
    gains), ``integral_limit`` (2.0), ``min_confidence`` ("medium").  Use to hold one metric at an
    operational target when the metric rises monotonically with the parameter (e.g. scans with
    scanXp); on ``tiny`` (2000 users) the mean scan frequency over days 20-29 is within 10 % of a
    setpoint above (2.3) or below (1.3) the level hold keeps (about 2.0); on seeds 0-9 the largest
    error was 2 % above and 6 % below.  Small moves accumulate
    in a real-valued level of the parameter, so integer rounding does not stall it at small values.
    """

    def __init__(self, metric: str = "SCAN_FREQUENCY", param: str = "scanXp", setpoint: float = 2.0,
                 kp: float = 0.5, ki: float = 0.05, kd: float = 0.1, integral_limit: float = 2.0,
                 min_confidence: str = "medium"):
        self.metric = hparams.choice("pid", "metric", metric, METRIC_NAMES)
        self.param = hparams.choice("pid", "param", param, PARAM_NAMES)
        self.setpoint = hparams.real("pid", "setpoint", setpoint, 0.0, lo_open=True)
        self.kp, self.ki, self.kd = (hparams.real("pid", key, val, 0.0) for key, val in (("kp", kp), ("ki", ki),
                                                                                         ("kd", kd)))
        # an infinite integral_limit is meaningful: no limit
        self.integral_limit = hparams.real("pid", "integral_limit", integral_limit, 0.0, finite=False)
        self.min_confidence = _confidence("pid", min_confidence)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.integral = 0.0
        self.previous: float | None = None
        self.level: float | None = None

    def act(self, context: Context) -> Update | None:
        if not context.can_update:
            return None
        value = confident_value(context, self.metric, self.min_confidence)
        if value is None:
            return None
        e = (self.setpoint - value) / self.setpoint
        d = 0.0 if self.previous is None else e - self.previous
        self.previous = e
        cur = context.config[self.param]
        # the controller's own real-valued level of the parameter: small moves accumulate instead of
        # being lost to integer rounding (resynchronised whenever the config differs from it)
        level = self.level if self.level is not None and round_half_away(self.level) == cur else float(cur)
        limit = step_units(cur, context.delta_limit_pct)
        raw = (self.kp * e + self.ki * (self.integral + e) + self.kd * d) * max(abs(level), 1.0)
        saturated = abs(raw) >= limit and raw * e > 0
        if not saturated:  # conditional integration (anti-windup)
            self.integral = min(max(self.integral + e, -self.integral_limit), self.integral_limit)
        # the move is clipped around the current value (the guardrails' delta window), not the level
        self.level = max(min(max(level + raw, cur - limit), cur + limit), 0.0)
        reach = math.floor(limit)  # the integers inside the window: cur +- floor(limit)
        target = min(max(round_half_away(self.level), cur - reach), cur + reach)
        if target == cur:
            return None
        return Update({self.param: target},
                      f"pid: {self.metric} {value:.3f} vs setpoint {self.setpoint} (error {e:+.3f})")

    def update(self, outcome: Outcome) -> None:
        pass


# ----------------------------------------------------------------------------------------- safety
class Safety:
    """A wrapper that adds the TendedLoop production safety patterns to any agent.

    * cooldown after a rejection: hold for ``cooldown`` days after a rejected proposal;
    * drift dampening: each move of the inner agent is shrunk to at most ``max_fraction`` of the
      delta limit and strictly below the full delta, so no update is a max-delta move; a parameter
      that cannot move without a full-delta move (e.g. a value of 0 or 1 at a 50 % limit) is dropped;
    * anomaly cooldown: when the guardrails flag an anomaly (``anomaly_run`` consecutive full-delta
      updates; the wrapper also counts them itself), hold for ``anomaly_cooldown`` days.

    The wrapper proposes only when an update could be accepted; the inner agent is asked only then
    (and not during a cooldown); ``reset`` and every ``update`` are forwarded.  Hyperparameters:
    ``cooldown`` (2 days), ``max_fraction`` (0.8), ``anomaly_cooldown`` (3 days), ``anomaly_run``
    (4).  Use around any experimental or learned agent before it touches a live experiment.
    """

    def __init__(self, agent, cooldown: int = 2, max_fraction: float = 0.8, anomaly_cooldown: int = 3,
                 anomaly_run: int = 4):
        if not all(callable(getattr(agent, meth, None)) for meth in ("reset", "act", "update")):
            raise hparams.fail("safety", "agent", "an agent (with reset, act and update)", agent)
        self.agent = agent
        self.cooldown = hparams.integer("safety", "cooldown", cooldown, 0)
        self.max_fraction = hparams.real("safety", "max_fraction", max_fraction, 0.0, 1.0, lo_open=True)
        self.anomaly_cooldown = hparams.integer("safety", "anomaly_cooldown", anomaly_cooldown, 0)
        self.anomaly_run = hparams.integer("safety", "anomaly_run", anomaly_run, 1)
        self._reset_state()

    def _reset_state(self) -> None:
        self.resume_day = 0          # hold while context.day < resume_day
        self.run = 0                 # own count of consecutive accepted full-delta updates
        self.proposed: tuple[dict, dict, float] | None = None  # (config, overrides, delta limit)

    def reset(self, seed: int | None = None) -> None:
        self._reset_state()
        self.agent.reset(seed)

    def dampen(self, context: Context, update: Update) -> Update | None:
        """``update`` with every move shrunk as described above (None if nothing is left)."""
        out = {}
        for name, target in update.overrides.items():
            if name not in context.config:  # not ours to judge: the environment reports it by name
                out[name] = target
                continue
            cur = context.config[name]
            up, down = free_room(cur, context.delta_limit_pct)
            cap = math.floor(self.max_fraction * step_units(cur, context.delta_limit_pct))
            new = round_half_away(min(max(float(target), cur - min(down, cap)), cur + min(up, cap)))
            if new != cur:
                out[name] = new
        return Update(out, f"{update.reasoning} [safety: dampened]") if out else None

    def act(self, context: Context) -> Update | None:
        if context.anomaly or self.run >= self.anomaly_run:
            self.resume_day = max(self.resume_day, context.day + self.anomaly_cooldown)
            self.run = 0
        if not context.can_update or context.day < self.resume_day:
            return None
        update = self.agent.act(context)
        if update is None:
            return None
        update = self.dampen(context, update)
        if update is not None:
            self.proposed = (dict(context.config), dict(update.overrides), context.delta_limit_pct)
        return update

    def update(self, outcome: Outcome) -> None:
        if self.proposed is not None and outcome.decision is not None:
            config, overrides, pct = self.proposed
            if outcome.accepted:
                applied = outcome.decision.get("appliedConfig") or overrides
                at_max = any(abs(v - config[k]) > 0 and
                             (v >= round_half_away(config[k] + step_units(config[k], pct)) or
                              v <= round_half_away(config[k] - step_units(config[k], pct)))
                             for k, v in applied.items() if k in config)
                self.run = self.run + 1 if at_max else 0
                if outcome.decision.get("anomaly"):
                    self.resume_day = max(self.resume_day, outcome.day + self.anomaly_cooldown)
            else:
                self.resume_day = max(self.resume_day, outcome.day + self.cooldown)
        self.proposed = None
        self.agent.update(outcome)


@register("safety")
def safety(inner: str = "random", inner_params: Mapping | None = None, cooldown: int = 2,
           max_fraction: float = 0.8, anomaly_cooldown: int = 3, anomaly_run: int = 4) -> Safety:
    """:class:`Safety` around the registered agent ``inner`` built with ``inner_params``."""
    hparams.text("safety", "inner", inner)
    if inner_params is not None and not isinstance(inner_params, Mapping):
        raise hparams.fail("safety", "inner_params", "a mapping of the inner agent's hyperparameters", inner_params)
    return Safety(make(inner, **dict(inner_params or {})), cooldown=cooldown, max_fraction=max_fraction,
                  anomaly_cooldown=anomaly_cooldown, anomaly_run=anomaly_run)
