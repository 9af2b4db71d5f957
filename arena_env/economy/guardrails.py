"""The guardrail pipeline of one experiment, following the TendedLoop Arena protocol [DOCS].

Reusable outside the environment: the simulator and an HTTP sandbox server call the same code.
An update proposal of a variant goes through five checks, in this order; the first failing check
rejects it with its code (a rejection is a normal decision, not an error)::

    1. control lock     variant 0 is the control          -> CONTROL_VARIANT_IMMUTABLE
    2. status gate      experiment status is RUNNING       -> EXPERIMENT_NOT_RUNNING
    3. circuit breaker  the variant's breaker is closed    -> CIRCUIT_BREAKER_ACTIVE
    4. rate limiter     >= update_interval_min since the
                        variant's last ACCEPTED update     -> RATE_LIMITED (+ nextAllowedUpdate)
    5. delta clamp      not a rejection: each touched parameter moves at most delta_limit_pct of its
                        current value (at least one unit), then hard bounds; see ``guardrail_kernels.clamp_updates``.

A *hold* (every touched parameter equals its current value after rounding half away from zero) is
not an update attempt: it yields no decision record, changes no state and does not consume the
rate limit, whatever the variant or status.  Rejected attempts do not consume the rate limit either.

Times are simulated minutes (any finite real; the caller decides the epoch).  Decision records are
plain dicts in the protocol's camelCase shape (see :meth:`Guardrails.submit`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

import numpy as np

from . import guardrail_kernels
from .guardrail_kernels import round_half_away_array
from .params import ABSOLUTE_BOUNDS, N_PARAMS, PARAM_NAMES

__all__ = [
    "CONTROL_VARIANT_IMMUTABLE",
    "EXPERIMENT_NOT_RUNNING",
    "CIRCUIT_BREAKER_ACTIVE",
    "RATE_LIMITED",
    "REJECTION_CODES",
    "DRAFT",
    "RECRUITING",
    "RUNNING",
    "PAUSED",
    "COMPLETED",
    "ARCHIVED",
    "STATUSES",
    "TRANSITIONS",
    "PRESETS",
    "GuardrailConfig",
    "Guardrails",
]

# Rejection codes, in the order the checks run.
CONTROL_VARIANT_IMMUTABLE = "CONTROL_VARIANT_IMMUTABLE"
EXPERIMENT_NOT_RUNNING = "EXPERIMENT_NOT_RUNNING"
CIRCUIT_BREAKER_ACTIVE = "CIRCUIT_BREAKER_ACTIVE"
RATE_LIMITED = "RATE_LIMITED"
MAX_UPDATE_INTERVAL_MIN = 30 * 1440

REJECTION_CODES = (CONTROL_VARIANT_IMMUTABLE, EXPERIMENT_NOT_RUNNING, CIRCUIT_BREAKER_ACTIVE, RATE_LIMITED)

# Experiment lifecycle.
DRAFT, RECRUITING, RUNNING, PAUSED, COMPLETED, ARCHIVED = (
    "DRAFT", "RECRUITING", "RUNNING", "PAUSED", "COMPLETED", "ARCHIVED")
STATUSES = (DRAFT, RECRUITING, RUNNING, PAUSED, COMPLETED, ARCHIVED)
TRANSITIONS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    DRAFT: MappingProxyType({"launch": RECRUITING, "archive": ARCHIVED}),
    RECRUITING: MappingProxyType({"start": RUNNING}),
    RUNNING: MappingProxyType({"pause": PAUSED, "complete": COMPLETED}),
    PAUSED: MappingProxyType({"resume": RUNNING, "complete": COMPLETED}),
    COMPLETED: MappingProxyType({"archive": ARCHIVED}),
    ARCHIVED: MappingProxyType({}),
})
"""status -> {action: next status}; every other (status, action) pair is illegal."""

PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "conservative": MappingProxyType({"update_interval_min": 120, "delta_limit_pct": 15.0}),
    "standard": MappingProxyType({"update_interval_min": 60, "delta_limit_pct": 50.0}),
    "aggressive": MappingProxyType({"update_interval_min": 5, "delta_limit_pct": 80.0}),
})
"""Protocol presets: name -> GuardrailConfig fields (use :meth:`GuardrailConfig.preset`)."""

_ABS_LO = np.array([ABSOLUTE_BOUNDS[k][0] for k in PARAM_NAMES], dtype=np.int64)
_ABS_HI = np.array([ABSOLUTE_BOUNDS[k][1] for k in PARAM_NAMES], dtype=np.int64)


def _int_field(name: str, value, lo: int, hi: float) -> int:
    allowed = f"an integer >= {lo}" if hi == math.inf else f"an integer in [{lo}, {hi}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not math.isfinite(value) or value != int(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def _float_field(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not lo <= value <= hi:  # NaN fails the comparison
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _bounds_field(name: str, value, default: np.ndarray) -> np.ndarray:
    arr = np.array(default if value is None else value)
    if arr.shape != (N_PARAMS,) or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) \
            or not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} must be {N_PARAMS} integers in PARAM_NAMES order, got {value!r}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < _ABS_LO) | (arr > _ABS_HI))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}[{PARAM_NAMES[i]}] = {arr[i]} is outside the absolute bounds "
                         f"[{_ABS_LO[i]}, {_ABS_HI[i]}]")
    arr.flags.writeable = False
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class GuardrailConfig:
    """Guardrail settings of one experiment (validated; ``ValueError`` names the field and range).

    Attributes:
        update_interval_min: minimum simulated minutes between two accepted updates of a variant
            (integer, 5..43200).  The hosted protocol allows 5..1440; the simulator steps a day at a
            time, so it also accepts multi-day intervals up to 30 days (``MAX_UPDATE_INTERVAL_MIN``).
        delta_limit_pct: per-update change limit in percent of the current value (5..100).
        retention_cliff: the automatic breaker trips when a treatment's retention is below it (0..1).
        cliff_min_sample: no automatic trip while fewer users are enrolled in the variant (>= 0).
        anomaly_run: a variant is anomalous after this many consecutive accepted updates that each
            moved some parameter by the full allowed delta (>= 1).
        lo, hi: hard bounds, int64 (P,) in ``PARAM_NAMES`` order, read-only; within
            ``params.ABSOLUTE_BOUNDS`` (a scenario may narrow them, not widen them) and ``lo <= hi``.
    """

    update_interval_min: int = 60
    delta_limit_pct: float = 50.0
    retention_cliff: float = 0.30
    cliff_min_sample: int = 30
    anomaly_run: int = 4
    lo: np.ndarray = None  # type: ignore[assignment]  # default: ABSOLUTE_BOUNDS
    hi: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self):
        put = object.__setattr__.__get__(self)
        put("update_interval_min", _int_field("update_interval_min", self.update_interval_min, 5,
                                                          MAX_UPDATE_INTERVAL_MIN))
        put("delta_limit_pct", _float_field("delta_limit_pct", self.delta_limit_pct, 5.0, 100.0))
        put("retention_cliff", _float_field("retention_cliff", self.retention_cliff, 0.0, 1.0))
        put("cliff_min_sample", _int_field("cliff_min_sample", self.cliff_min_sample, 0, math.inf))
        put("anomaly_run", _int_field("anomaly_run", self.anomaly_run, 1, math.inf))
        put("lo", _bounds_field("lo", self.lo, _ABS_LO))
        put("hi", _bounds_field("hi", self.hi, _ABS_HI))
        bad = np.flatnonzero(self.lo > self.hi)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"bounds of {PARAM_NAMES[i]}: lo = {self.lo[i]} > hi = {self.hi[i]}")

    @classmethod
    def preset(cls, name: str, **overrides) -> GuardrailConfig:
        """The config of a protocol preset (``PRESETS``), with optional field overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown guardrail preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def __reduce__(self):  # unpickling and deepcopy re-run the validation (read-only bounds)
        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    def _key(self):
        return (self.update_interval_min, self.delta_limit_pct, self.retention_cliff,
                self.cliff_min_sample, self.anomaly_run, self.lo.tobytes(), self.hi.tobytes())

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


def _minute(x: float):
    """A minute for a record: int when integral (JSON-friendly), else float."""
    return int(x) if float(x).is_integer() else float(x)


class Guardrails:
    """Guardrail state of one experiment with ``n_variants`` variants (variant 0 is the control).

    State (plain numpy arrays and Python scalars; picklable, ``copy.copy``/``deepcopy`` safe, and
    exposed through :meth:`state_dict` / :meth:`load_state_dict`):

    * ``status``: lifecycle status, one of ``STATUSES``;
    * ``breaker_open``: bool (V,), open breakers freeze the variant until :meth:`reset_breaker`;
    * ``last_update_minute``: float64 (V,), minute of the last accepted update, ``-inf`` if none;
    * ``consecutive_max``: int64 (V,), current run of accepted full-delta updates;
    * ``anomaly``: bool (V,), ``consecutive_max >= config.anomaly_run``;
    * ``n_decisions``: decision records issued so far (ids are ``dec_000001``, ...).

    Args:
        n_variants: number of variants V >= 1 (the protocol allows at most 5; not enforced here).
        config: a :class:`GuardrailConfig` (default: the standard preset).
        status: initial lifecycle status (default DRAFT; an env may start at RUNNING directly).
        clamp: the delta-clamp backend with the signature of ``guardrail_kernels.clamp_updates`` (default, Numba);
            ``guardrail_ref.clamp_updates`` is its NumPy twin.
    """

    def __init__(self, n_variants: int, config: GuardrailConfig | None = None, *, status: str = DRAFT,
                 clamp: Callable = guardrail_kernels.clamp_updates):
        n_variants = _int_field("n_variants", n_variants, 1, math.inf)
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if not callable(clamp):
            raise ValueError(f"clamp must be callable, got {clamp!r}")
        self.config = GuardrailConfig() if config is None else config
        if not isinstance(self.config, GuardrailConfig):
            raise ValueError(f"config must be a GuardrailConfig, got {config!r}")
        self.n_variants = n_variants
        self.clamp = clamp
        self.status = status
        self.breaker_open = np.zeros(n_variants, dtype=bool)
        self.last_update_minute = np.full(n_variants, -np.inf)
        self.consecutive_max = np.zeros(n_variants, dtype=np.int64)
        self.anomaly = np.zeros(n_variants, dtype=bool)
        self.n_decisions = 0

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """A deep copy of the mutable state (config and backend are not included)."""
        return {
            "status": self.status,
            "breaker_open": self.breaker_open.copy(),
            "last_update_minute": self.last_update_minute.copy(),
            "consecutive_max": self.consecutive_max.copy(),
            "anomaly": self.anomaly.copy(),
            "n_decisions": self.n_decisions,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict` (validated first; nothing changes on ``ValueError``)."""
        v = self.n_variants
        if state.get("status") not in STATUSES:
            raise ValueError(f"state status must be one of {', '.join(STATUSES)}, got {state.get('status')!r}")
        arrays = {}
        for name, dtype in (("breaker_open", bool), ("last_update_minute", np.float64),
                            ("consecutive_max", np.int64), ("anomaly", bool)):
            arr = np.array(state[name], dtype=dtype)
            if arr.shape != (v,):
                raise ValueError(f"state {name} must have shape ({v},), got {arr.shape}")
            arrays[name] = arr
        n_decisions = _int_field("n_decisions", state["n_decisions"], 0, math.inf)
        self.status = state["status"]
        self.__dict__.update(arrays)
        self.n_decisions = n_decisions

    def __copy__(self) -> Guardrails:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.load_state_dict(self.state_dict())
        return new

    copy = __copy__
    """An independent copy (state arrays copied; config and backend shared, both immutable)."""

    # ------------------------------------------------------------- lifecycle
    def _transition(self, action: str) -> str:
        legal = TRANSITIONS[self.status]
        if action not in legal:
            raise ValueError(f"cannot {action} an experiment in status {self.status}; legal actions: "
                             f"{', '.join(legal) or 'none'}")
        self.status = legal[action]
        return self.status

    def launch(self) -> str:
        """DRAFT -> RECRUITING; returns the new status."""
        return self._transition("launch")

    def start(self) -> str:
        """RECRUITING -> RUNNING."""
        return self._transition("start")

    def pause(self) -> str:
        """RUNNING -> PAUSED."""
        return self._transition("pause")

    def resume(self) -> str:
        """PAUSED -> RUNNING."""
        return self._transition("resume")

    def complete(self) -> str:
        """RUNNING or PAUSED -> COMPLETED."""
        return self._transition("complete")

    def archive(self) -> str:
        """COMPLETED or DRAFT -> ARCHIVED."""
        return self._transition("archive")

    # ------------------------------------------------- breaker and health
    def _variant(self, v) -> int:
        if type(v) is int and 0 <= v < self.n_variants:  # the common case, without the checks' cost
            return v
        return _int_field("variant", v, 0, self.n_variants - 1)

    def trip_breaker(self, v: int) -> bool:
        """Researcher action: open the breaker of variant ``v``; True if it was closed."""
        v = self._variant(v)
        was_closed = not self.breaker_open[v]
        self.breaker_open[v] = True
        return was_closed

    def reset_breaker(self, v: int) -> bool:
        """Researcher action, the ONLY way to close a breaker; True if it was open."""
        v = self._variant(v)
        was_open = bool(self.breaker_open[v])
        self.breaker_open[v] = False
        return was_open

    def check_health(self, retention, enrolled) -> list[int]:
        """Health monitor: trip the breaker of every treatment (v >= 1) whose retention is below
        ``config.retention_cliff`` with at least ``config.cliff_min_sample`` enrolled users.

        ``retention`` float (V,) in 0..1 (NaN never trips), ``enrolled`` (V,) counts.  Returns the
        variants newly tripped, ascending.  Never closes a breaker.
        """
        ret = np.asarray(retention, dtype=np.float64)
        enr = np.asarray(enrolled, dtype=np.float64)
        for name, arr in (("retention", ret), ("enrolled", enr)):
            if arr.shape != (self.n_variants,):
                raise ValueError(f"{name} must have shape ({self.n_variants},), got {arr.shape}")
        trip = (ret < self.config.retention_cliff) & (enr >= self.config.cliff_min_sample) & ~self.breaker_open
        trip[0] = False
        self.breaker_open |= trip
        return np.flatnonzero(trip).tolist()

    # ----------------------------------------------------------- updates
    def next_allowed_update(self, v: int) -> float:
        """First minute at which variant ``v`` may have an update accepted (``-inf`` if never updated)."""
        return float(self.last_update_minute[self._variant(v)] + self.config.update_interval_min)

    def _check_inputs(self, now_minute, current, requested, has_request, variants):
        if isinstance(now_minute, (bool, np.bool_)) or not isinstance(now_minute, (int, float, np.integer, np.floating)) \
                or not math.isfinite(now_minute):
            raise ValueError(f"now_minute must be a finite number, got {now_minute!r}")
        shape = (self.n_variants, N_PARAMS)
        cur = np.asarray(current)
        req = np.asarray(requested)
        has = np.asarray(has_request)
        for name, arr, kinds in (("current", cur, "iuf"), ("requested", req, "iuf"), ("has_request", has, "b")):
            if arr.shape != shape or arr.dtype.kind not in kinds:
                raise ValueError(f"{name} must be a {'bool' if kinds == 'b' else 'numeric'} array of shape "
                                 f"{shape}, got {arr.dtype} {arr.shape}")
        bad = np.argwhere(~np.isfinite(cur) | (cur != np.round(cur))) if cur.dtype.kind == "f" else ()
        if len(bad):
            v, i = bad[0]
            raise ValueError(f"variant {v}, parameter {PARAM_NAMES[i]}: current value {cur[v, i]!r} is not an integer")
        if variants is not None:
            rows = np.zeros(self.n_variants, dtype=bool)
            for v in variants:
                rows[self._variant(v)] = True
            has = has & rows[:, None]
        req = req.astype(np.float64)
        if not np.isfinite(req[has]).all():
            bad = np.argwhere(has & ~np.isfinite(req))
            v, i = bad[0]
            raise ValueError(f"variant {v}, parameter {PARAM_NAMES[i]}: requested value {req[v, i]!r} is not finite")
        return float(now_minute), cur.astype(np.int64), req, has

    def _gate(self, v: int, now: float) -> str | None:
        """Checks 1-4 for variant ``v``: the rejection code, or None when the update may proceed."""
        if v == 0:
            return CONTROL_VARIANT_IMMUTABLE
        if self.status != RUNNING:
            return EXPERIMENT_NOT_RUNNING
        if self.breaker_open[v]:
            return CIRCUIT_BREAKER_ACTIVE
        if now < self.last_update_minute[v] + self.config.update_interval_min:
            return RATE_LIMITED
        return None

    def submit(self, now_minute: float, current, requested, has_request,
               variants: Iterable[int] | None = None) -> tuple[np.ndarray, list[dict]]:
        """Run the guardrail pipeline on the update proposals of several variants at one minute.

        Args:
            now_minute: the current simulated minute (finite).
            current: int (V, P) current configs of ALL variants (integral floats accepted).  Not modified.
            requested: float (V, P) proposed values; read only where ``has_request`` (may be NaN elsewhere).
            has_request: bool (V, P), the parameters each proposal touches (the economyOverrides keys).
            variants: the variants whose rows are proposals (default: all); other rows are ignored.

        Returns:
            ``(new_config, records)``: ``new_config`` is a fresh int64 (V, P) copy of ``current`` with the
            accepted rows replaced by the clamped values; ``records`` holds one decision per variant that
            made a non-hold proposal, in ascending variant order.  Accepted::

                {"decisionLogId": "dec_000001", "variant": v, "minute": now, "accepted": True,
                 "economyOverrides": {key: requested int}, "appliedConfig": {key: applied int},
                 "clampedDeltas": {key: {"previous", "requested", "applied", "clamped": True,
                                         "deltaPercent"}},   # clamped keys only
                 "nextAllowedUpdate": now + update_interval_min, "anomaly": bool}

            Rejected::

                {"decisionLogId", "variant", "minute", "accepted": False, "economyOverrides",
                 "rejectionReason": CODE, "nextAllowedUpdate": minute if RATE_LIMITED else None}

            Keys are the touched parameters; requested ints are the requests rounded half away from
            zero; ``deltaPercent`` = 100 * (applied - previous) / previous rounded to 2 decimals (None
            when previous is 0); ``anomaly`` is True when this update brings the variant's run of
            consecutive full-delta updates to ``anomaly_run`` or more.

        Raises:
            ValueError: bad shapes or dtypes, a non-integral current value, a non-finite touched
                request (naming the variant and parameter), or an unknown variant.  All input is
                validated before any state changes.
        """
        now, cur, req, has = self._check_inputs(now_minute, current, requested, has_request, variants)
        rounded = np.empty(cur.size)
        round_half_away_array(np.where(has, req, cur).ravel(), rounded)
        rounded = rounded.reshape(cur.shape)
        movers = np.flatnonzero((has & (rounded != cur)).any(axis=1)).tolist()
        codes = {v: self._gate(v, now) for v in movers}
        passed = [v for v in movers if codes[v] is None]

        new = cur.copy()
        if passed:
            applied = np.empty((len(passed), N_PARAMS), dtype=np.int64)
            clamped = np.empty((len(passed), N_PARAMS), dtype=bool)
            at_max = np.empty((len(passed), N_PARAMS), dtype=bool)
            self.clamp(np.ascontiguousarray(cur[passed]), np.ascontiguousarray(req[passed]),
                       np.ascontiguousarray(has[passed]), self.config.delta_limit_pct,
                       self.config.lo, self.config.hi, applied, clamped, at_max)
            new[passed] = applied
            applied_rows, clamped_rows, at_max_rows = applied.tolist(), clamped.tolist(), at_max.tolist()
        row = {v: k for k, v in enumerate(passed)}

        # the records, from Python lists (one conversion per array instead of one per variant and key)
        has_rows, cur_rows, rounded_rows = has.tolist(), cur.tolist(), rounded.tolist()
        records = []
        for v in movers:
            self.n_decisions += 1
            keys = [i for i, h in enumerate(has_rows[v]) if h]
            asked = [int(x) for x in rounded_rows[v]]  # Python ints: a huge request stays exact
            rec = {
                "decisionLogId": f"dec_{self.n_decisions:06d}",
                "variant": v,
                "minute": _minute(now),
                "accepted": codes[v] is None,
                "economyOverrides": {PARAM_NAMES[i]: asked[i] for i in keys},
            }
            if codes[v] is not None:
                rec["rejectionReason"] = codes[v]
                rec["nextAllowedUpdate"] = (_minute(self.next_allowed_update(v))
                                            if codes[v] == RATE_LIMITED else None)
                records.append(rec)
                continue
            k = row[v]
            was, now_v, clamped_v = cur_rows[v], applied_rows[k], clamped_rows[k]
            rec["appliedConfig"] = {PARAM_NAMES[i]: now_v[i] for i in keys}
            rec["clampedDeltas"] = {
                PARAM_NAMES[i]: {
                    "previous": was[i],
                    "requested": asked[i],
                    "applied": now_v[i],
                    "clamped": True,
                    "deltaPercent": (round(100.0 * float(now_v[i] - was[i]) / float(was[i]), 2)
                                     if was[i] != 0 else None),
                }
                for i in keys if clamped_v[i]
            }
            self.last_update_minute[v] = now
            self.consecutive_max[v] = self.consecutive_max[v] + 1 if any(at_max_rows[k]) else 0
            self.anomaly[v] = self.consecutive_max[v] >= self.config.anomaly_run
            rec["nextAllowedUpdate"] = _minute(self.next_allowed_update(v))
            rec["anomaly"] = bool(self.anomaly[v])
            records.append(rec)
        return new, records

    def __repr__(self) -> str:
        return (f"Guardrails(n_variants={self.n_variants}, status={self.status}, "
                f"breaker_open={self.breaker_open.tolist()}, anomaly={self.anomaly.tolist()}, "
                f"n_decisions={self.n_decisions})")

