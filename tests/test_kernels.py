"""The population kernel against its NumPy twin, and its independence from the thread count."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena_env.economy import layout as L
from arena_env.economy import population as P
from arena_env.economy import population_ref as R
from arena_env.economy import model, scenario
from arena_env.economy.params import ABSOLUTE_BOUNDS, PARAM_NAMES
from tests.helpers import Population

INT_FIELDS = [n for n, dt in L.USER_FIELDS if np.dtype(dt).kind in "iu"]
FLOAT_FIELDS = [n for n, dt in L.USER_FIELDS if np.dtype(dt).kind == "f"]


def assert_same(a, b, ctx=""):
    """Integers exactly; floats to 1e-9 (relative, 1e-9 absolute near 0)."""
    for name in INT_FIELDS:
        np.testing.assert_array_equal(a.state[name], b.state[name], err_msg=f"{ctx} field {name}")
    for name in FLOAT_FIELDS:
        np.testing.assert_allclose(a.state[name], b.state[name], rtol=1e-9, atol=1e-9, err_msg=f"{ctx} field {name}")
    np.testing.assert_array_equal(a.agg_i, b.agg_i, err_msg=f"{ctx} integer aggregates")
    np.testing.assert_allclose(a.agg_f, b.agg_f, rtol=1e-9, atol=1e-9, err_msg=f"{ctx} float aggregates")
    np.testing.assert_allclose(a.site_prev, b.site_prev, rtol=1e-9, atol=1e-9, err_msg=f"{ctx} site sums")


def test_user_state_fits_in_64_bytes():
    size = sum(np.dtype(dt).itemsize for _, dt in L.USER_FIELDS)
    assert size <= 64
    assert size == 48
    st = model.init_population(scenario.load("tiny"), 0)
    assert st.dtype.itemsize == 48 and st.nbytes == 48 * st.shape[0]  # one packed record per user


def test_cumulative_xp_passes_two_to_the_31_on_both_backends():
    """cum_xp is int64: at the hard bounds a user can earn ~300k XP a day, so 32,000 days (the longest
    episode) pass 2**31; an int32 field wrapped to negative values."""
    sc = scenario.load("tiny", n_users=300, recruitment={"initial_fraction": 1.0, "days": 0})
    start = 2**31 - 10
    pops = [Population(sc, 4, backend) for backend in (P, R)]
    for pop in pops:
        pop.state["cum_xp"][:] = start
        for day in range(3):
            pop.step(day)
    assert_same(*pops)
    a = pops[0].state
    earned = a["cum_xp"].astype(np.int64) - start
    assert (earned >= 0).all() and (a["cum_xp"] > 2**31 - 1).sum() > 100  # most users earned, none wrapped


@pytest.mark.parametrize("name", ["tiny", "gaming-prone"])
def test_twin_trajectory_matches(name):
    sc = scenario.load(name, n_users=900, max_days=40)
    rng = np.random.default_rng(5)
    a = Population(sc, 11, P)
    b = Population(sc, 11, R)
    for day in range(40):
        if day % 10 == 0:  # change the configs now and then, within the absolute bounds
            cfg = np.array([[rng.integers(ABSOLUTE_BOUNDS[p][0], min(ABSOLUTE_BOUNDS[p][1], 60) + 1)
                             for p in PARAM_NAMES] for _ in range(sc.n_variants)], dtype=np.float64)
            a.set_config(cfg)
            b.set_config(cfg)
        payout = None if day % 3 else rng.uniform(0.2, 1.0, sc.n_variants)  # a short budget now and then
        a.step(day, payout)
        b.step(day, payout)
        assert_same(a, b, f"day {day}")
    assert a.agg_i[..., L.A_ENROLLED].sum() == sc.n_users  # everyone enrolled by day 40
    assert a.agg_i[..., L.A_ACTIVE].sum() > 0


_RANGES = {  # field -> (low, high) of the random states
    "variant": (0, 2), "segment": (0, 1), "enroll_day": (0, 12), "streak": (0, 300), "flags": (0, 1),
    "act7": (0, 127), "m_target": (0, 250), "m_progress": (0, 255), "cum_xp": (0, 10**6), "xp_today": (0, 0),
    "ref_xp": (-1.0, 500.0), "sat": (0.0, 1.0), "scan_ema": (0.0, 30.0), "xp_ema": (0.0, 800.0),
    "trait": (-4.0, 4.0), "fb_trait": (-6.0, 4.0),
}
_cfg = st.tuples(*[st.integers(*ABSOLUTE_BOUNDS[p]) for p in PARAM_NAMES])


@settings(max_examples=40, deadline=None)
@given(state_seed=st.integers(0, 2**32 - 1), day=st.integers(0, 20), seed=st.integers(0, 2**62),
       cfgs=st.lists(_cfg, min_size=3, max_size=3))
def test_twin_on_random_states(state_seed, day, seed, cfgs):
    """One step from an arbitrary valid user state and configs gives the same result on both backends."""
    sc = scenario.load("tiny", n_users=120, site_size=7)
    a = Population(sc, seed, P)
    b = Population(sc, seed, R)
    rng = np.random.default_rng(state_seed)
    for name, dt in L.USER_FIELDS:
        if name == "last_active":
            continue
        lo, hi = _RANGES[name]
        vals = rng.integers(lo, hi + 1, sc.n_users) if np.dtype(dt).kind in "iu" else rng.uniform(lo, hi, sc.n_users)
        a.state[name][:] = vals.astype(dt)
    lag = rng.integers(1, 6, sc.n_users)
    a.state["last_active"][:] = np.maximum(day - lag, a.state["enroll_day"] - 1)
    for name, _ in L.USER_FIELDS:
        b.state[name][:] = a.state[name]
    n = rng.integers(0, 8, a.site_prev.shape[0]).astype(float)
    mean = rng.uniform(0, 300, n.shape)
    block = [n, n * mean, n * (mean ** 2 + rng.uniform(0, 400, n.shape))]
    a.site_prev[:] = np.stack(block + [2 * x for x in block], axis=1)
    b.site_prev[:] = a.site_prev
    cfg = np.array(cfgs, dtype=np.float64)
    a.set_config(cfg)
    b.set_config(cfg)
    a.pscale[:] = b.pscale[:] = rng.uniform(0.3, 1.0, sc.n_variants)
    payout = rng.uniform(0.0, 1.0, sc.n_variants) if state_seed % 2 else None
    a.step(day, payout)
    b.step(day, payout)
    assert_same(a, b)


def test_day_params_agree():
    """Both backends bundle the same tables and constants for the phases."""
    sc = scenario.load("tiny")
    p = Population(sc, 2**62 + 5, P)
    glob = model.global_vector(sc, 9)
    args = (9, p.seed, p.cfg, p.pscale, p.vs, p.sg, glob, p.tenure, p.log1p)
    a, b = P.day_params(*args), R.day_params(*args)
    assert type(a) is type(b) is L.DayParams
    for name, x, y in zip(L.DayParams._fields, a, b, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, name
    assert a.period == 7 and a.sb_first.shape == (sc.n_variants,)


def test_counter_based_draws_do_not_depend_on_user_order():
    """With rank effects off, regrouping users into other sites and chunks changes no user's day."""
    off = dict(n_users=400, economy={"rank_strength": 0.0},
               segments=[{"name": "a", "sat_rank": 0.0}, {"name": "b", "sat_rank": 0.0, "base_logit": -2.0}])
    sc1 = scenario.load("tiny", site_size=10, **off)
    sc2 = scenario.load("tiny", site_size=400, **off)
    a = Population(sc1, 9, P)
    b = Population(sc2, 9, P)
    for day in range(15):
        a.step(day)
        b.step(day)
    for name in ("streak", "cum_xp", "flags", "act7"):
        np.testing.assert_array_equal(a.state[name], b.state[name])


@numba.njit
def _draw_all(vs, po, us, out):
    for i in range(us.size):
        out[i] = P._poisson(vs, 0, 0, po, us[i])


@pytest.mark.parametrize("lam", [0.0, -1.0, 1e-9, 0.05, 0.12, 0.8, 2.0, 11.0, 40.0, 254.5, 400.0, 800.0])
def test_poisson_tables_draw_what_the_recurrence_draws(lam):
    """The kernel's table draw (model.poisson_table + guide) gives the twin's recurrence result for every
    uniform, including each CDF value and its neighbours, and the cap of 255 where the sums stop short."""
    vs = np.zeros((1, 1, L.N_VS))
    o = L.VS_POIS + L.POIS_W * L.PO_ISSUE
    model.poisson_table(lam, np.exp(-lam), vs[0, 0], o)
    n = int(vs[0, 0, o])
    assert 1 <= n <= L.POIS_K
    cdf = vs[0, 0, o + 1 + L.POIS_M:o + 1 + L.POIS_M + n]
    assert np.all(np.diff(cdf) >= 0.0)
    edges = np.concatenate([cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 1.0), np.arange(L.POIS_M) / L.POIS_M])
    us = np.concatenate([np.random.default_rng(3).random(20_000), edges, [0.0, 1.0 - 2.0**-53]])
    us = us[(us >= 0.0) & (us < 1.0)]
    got = np.empty(us.size, dtype=np.int64)
    _draw_all(vs, L.PO_ISSUE, us, got)
    want = R._poisson(np.full(us.size, lam), np.full(us.size, np.exp(-lam)), us)
    np.testing.assert_array_equal(got, want)
    if lam >= 400.0:  # the sums stop far below 1: every larger uniform draws the cap
        assert cdf[-1] < 1e-6 and (got[us > cdf[-1]] == 255).all()


@numba.njit
def _bernoulli_all(us, xs, out):
    for i in range(us.size):
        out[i] = P._bernoulli_logit(us[i], xs[i])


def test_bernoulli_shortcuts_agree_with_the_full_test():
    """Every shortcut of the kernel's Bernoulli draw gives the full test's answer, also for uniforms a few
    ulps either side of the decision boundary ``1 / (1 + exp(-x))``."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-40.0, 40.0, 20_000), rng.normal(0.0, 1.5, 60_000), [-1.0, 0.0, 1.5, 4.0]])
    u = rng.random(x.size)
    edge = 1.0 / (1.0 + np.exp(-x))
    near = [edge]
    for _ in range(3):
        near.append(np.nextafter(near[-1], 0.0))
    up = [edge]
    for _ in range(3):
        up.append(np.nextafter(up[-1], 1.0))
    us = np.concatenate([u, *near, *up[1:]])
    xs = np.tile(x, 1 + len(near) + len(up) - 1)
    keep = us < 1.0
    us, xs = us[keep], xs[keep]
    got = np.empty(us.size, dtype=np.bool_)
    _bernoulli_all(us, xs, got)
    want = np.array([a * (1.0 + math.exp(-b)) < 1.0 for a, b in zip(us.tolist(), xs.tolist())])
    np.testing.assert_array_equal(got, want)
    assert 0.3 < want.mean() < 0.7  # both answers are exercised


def test_mission_period_without_a_division():
    """``(age * period_magic) >> 32`` is ``age // period`` for every age a population can reach (int16
    enrolment days) and every period a scenario allows (1..365)."""
    age = np.arange(2**16, dtype=np.uint64)
    glob = model.global_vector(scenario.load("tiny"), 0)
    for period in range(1, 366):
        glob[L.GL_MISSION_PERIOD] = period
        p = P.day_params(0, 1, np.zeros((2, 10)), np.ones(2), np.zeros((2, 1, L.N_VS)), np.zeros((1, L.N_SG)), glob,
                         np.zeros((1, 2, L.N_TN)), np.zeros(4))
        assert p.period == period
        np.testing.assert_array_equal((age * p.period_magic) >> np.uint64(32), age // np.uint64(period))
