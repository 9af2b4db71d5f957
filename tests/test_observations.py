"""The observation vector: every entry within its documented range (the Box bounds), none constant
over the episodes of several scenarios and policies, except the ones documented as constant."""

from __future__ import annotations

import numpy as np
import pytest

from arena_env.economy.env import OBS_DIM, OBS_HIGH, OBS_LOW, EconomyEnv

DAYS = 30


def hold(env, agent, day, rng):
    return np.zeros(10, np.float32)


def random_step(env, agent, day, rng):
    return rng.uniform(-1.0, 1.0, 10).astype(np.float32)


def full_up(env, agent, day, rng):
    return np.ones(10, np.float32)


def bounds_flip(env, agent, day, rng):
    """Absolute targets at the hard bounds, alternating every 5 days (clamped, max-delta runs)."""
    sp = env.action_space(agent)
    return (sp.high if (day // 5) % 2 == 0 else sp.low).copy()


def bounds_mixed(env, agent, day, rng):
    """Half the parameters at the upper bound, half at the lower one, swapping every 4 days."""
    sp = env.action_space(agent)
    up = (np.arange(10) + day // 4 + int(agent[-1])) % 2 == 0
    return np.where(up, sp.high, sp.low).astype(np.float32)


RUNS = [
    ("tiny", {}, hold),
    ("tiny", {}, random_step),
    ("tiny", {"action_mode": "absolute"}, bounds_flip),
    ("tiny", {"guardrails": {"update_interval_min": 4320},  # 3 days: the rate-limit clock runs
              "schedule": [{"day": 6, "action": "trip_breaker", "variant": 1},
                           {"day": 12, "action": "reset_breaker"}]}, random_step),
    ("default", {"n_users": 2000}, full_up),
    ("default", {"n_users": 2000, "recruiting_days": 3}, random_step),
    ("budget", {"n_users": 2000, "action_mode": "absolute"}, bounds_mixed),
    ("interference", {"n_users": 2000}, random_step),
    ("gaming-prone", {"n_users": 2000, "action_mode": "absolute"}, bounds_flip),
]


def rollout(name, kw, policy, seed=7):
    env = EconomyEnv(name, **{"max_days": DAYS, "info_level": "light", **kw})
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [np.stack([obs[a] for a in env.agents])]
    while env.agents:
        day = env.day
        obs, *_ = env.step({a: policy(env, a, day, rng) for a in env.agents})
        if obs:
            out.append(np.stack([obs[a] for a in obs]))
    return env, np.concatenate(out)


@pytest.fixture(scope="module")
def trajectories():
    return [(run, *rollout(*run)) for run in RUNS]


def test_box_bounds_are_the_documented_ranges():
    env = EconomyEnv("tiny")
    space = env.observation_space("variant_0")
    assert space.shape == (OBS_DIM,) and space.dtype == np.float32
    assert np.array_equal(space.low, OBS_LOW) and np.array_equal(space.high, OBS_HIGH)
    lo = np.zeros(OBS_DIM)
    lo[53:63] = lo[68:70] = -1.0
    assert np.array_equal(space.low, lo) and np.array_equal(space.high, np.ones(OBS_DIM))


def test_every_entry_stays_in_its_range(trajectories):
    for (name, kw, policy), env, obs in trajectories:
        assert obs.dtype == np.float32 and obs.shape[1] == OBS_DIM
        assert np.all(np.isfinite(obs)), (name, policy.__name__)
        below = np.flatnonzero((obs < OBS_LOW).any(axis=0))
        above = np.flatnonzero((obs > OBS_HIGH).any(axis=0))
        assert below.size == 0 and above.size == 0, (name, kw, policy.__name__, below, above)
        for row in obs:
            assert env.observation_space("variant_0").contains(row)
        # binary entries are 0 or 1, confidence bands 0, 0.5 or 1, the rate-limit clock in sevenths
        for i in (64, 66, 67):
            assert set(np.unique(obs[:, i])) <= {0.0, 1.0}, i
        for b in (5, 29):
            conf = obs[:, b + 3:b + 24:4]
            assert set(np.unique(conf)) <= {0.0, 0.5, 1.0}
        assert np.allclose(obs[:, 63] * 7, np.round(obs[:, 63] * 7), atol=1e-6)


def test_no_entry_is_constant_across_the_runs(trajectories):
    allobs = np.concatenate([obs for _, _, obs in trajectories])
    constant = np.flatnonzero(allobs.max(axis=0) == allobs.min(axis=0))
    assert constant.size == 0, f"observation entries constant over every run: {constant.tolist()}"


def test_extremes_are_reached(trajectories):
    """The absolute policies drive configs to the hard bounds: the config entries reach +-1 (the
    farther bound) and the clamp share and anomaly flag move."""
    allobs = np.concatenate([obs for _, _, obs in trajectories])
    cfg = allobs[:, 53:63]
    assert np.all(np.isclose(cfg.max(axis=0), 1.0) | np.isclose(cfg.min(axis=0), -1.0))
    assert allobs[:, 65].max() > 0 and allobs[:, 66].max() == 1.0


def test_documented_constants():
    """The rate-limit clock is 0 throughout when the limiter cannot bind (interval <= one step), and
    the weekday is constant with weekly steps (max_days a multiple of 7)."""
    _, obs = rollout("tiny", {}, random_step)
    assert np.all(obs[:, 63] == 0.0)
    _, obs = rollout("tiny", {"days_per_step": 7, "max_days": 28}, random_step)
    assert np.all(obs[:, 68] == obs[0, 68]) and np.all(obs[:, 69] == obs[0, 69])


def test_rate_limit_clock_counts_whole_steps():
    env = EconomyEnv("tiny", guardrails={"update_interval_min": 2 * 1440 + 1}, info_level="light")
    env.reset(seed=1)
    up = np.zeros(10, np.float32)
    up[0] = 1.0
    obs, *_ = env.step({a: up for a in env.agents})  # accepted on day 0: next allowed at minute 2881
    assert env.guardrails.next_allowed_update(1) == 2881
    assert obs["variant_0"][63] == pytest.approx(2 / 7)  # day 1: blocked on days 1 and 2
    assert obs["variant_0"][67] == 0.0
    obs, *_ = env.step({})
    assert obs["variant_0"][63] == pytest.approx(1 / 7)
    obs, *_ = env.step({})
    assert obs["variant_0"][63] == 0.0 and obs["variant_0"][67] == 1.0  # day 3: allowed again


def test_config_entries_are_log_ratios_to_the_tenant():
    env = EconomyEnv("tiny", action_mode="absolute", info_level="light")
    obs, _ = env.reset(seed=3)
    assert np.all(obs["variant_0"][53:63] == 0.0)
    hi = env.action_space("variant_0").high
    for _ in range(12):  # the delta clamp walks the configs up to the hard bounds
        obs, *_ = env.step({a: hi for a in env.agents})
    cfg = env.config[1].astype(np.float64)
    t = env.tenant_vector.astype(np.float64)
    lo_b, hi_b = env.guardrail_config.lo.astype(np.float64), env.guardrail_config.hi.astype(np.float64)
    span = np.maximum(np.log1p(hi_b) - np.log1p(t), np.log1p(t) - np.log1p(lo_b))
    assert np.allclose(obs["variant_0"][53:63], (np.log1p(cfg) - np.log1p(t)) / span, atol=1e-6)
    assert np.all(cfg == hi_b)


def test_config_block_follows_the_config_and_its_scale():
    """Observation entries 53-62 are cached between steps; a new config or a new scale (the remote
    env's tenant) recomputes them."""
    env = EconomyEnv("tiny")
    env.reset(seed=0)

    def block():
        return (np.log1p(env.config.astype(np.float64)) - env._obs_cfg_log_tenant) / env._obs_cfg_span

    assert np.array_equal(env._config_block(), block())
    env.config = env.config.copy()
    env.config[1, 0] += 3
    assert np.array_equal(env._config_block(), block())
    env.config[1, 2] += 1  # in place
    assert np.array_equal(env._config_block(), block())
    env._obs_cfg_span = env._obs_cfg_span * 2.0
    assert np.array_equal(env._config_block(), block())
