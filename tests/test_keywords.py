"""Env keywords: integers (Python or NumPy) accepted, strings, floats and bools refused with the
keyword named; a scenario of the wrong type; the default thread count by population size."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import yaml

from arena_env._numba import USERS_PER_THREAD, threads_for
from arena_env.economy.env import EconomyEnv
from arena_env.economy.scenario import ScenarioError, load, read_yaml

INT_KEYWORDS = {"n_users": 800, "n_agents": 1, "max_days": 20, "days_per_step": 2, "site_size": 40,
                "metric_window": 5, "recruiting_days": 1}


@pytest.mark.parametrize("key", sorted(INT_KEYWORDS))
@pytest.mark.parametrize("kind", [int, np.int64, np.int32, np.uint16])
def test_integer_keywords_take_python_and_numpy_integers(key, kind):
    env = EconomyEnv("tiny", **{key: kind(INT_KEYWORDS[key])})
    got = getattr(env.scenario, key)
    assert got == INT_KEYWORDS[key] and type(got) is int


@pytest.mark.parametrize("key", sorted(INT_KEYWORDS))
@pytest.mark.parametrize("bad, fix", [("100", "write 100 without quotes"), (100.0, "write 100"),
                                      (np.float64(100.0), "write 100"), (2.5, None), (True, None),
                                      (np.bool_(True), None), ("many", None), ([100], None)])
def test_integer_keywords_refuse_strings_floats_and_bools(key, bad, fix):
    with pytest.raises(ScenarioError) as exc:
        EconomyEnv("tiny", **{key: bad})
    msg = str(exc.value)
    assert f"{key}: expected an integer, got {type(bad).__name__}" in msg
    if fix:
        assert fix in msg


def test_nested_integer_and_float_overrides():
    sc = load("tiny", guardrails={"anomaly_run": np.int8(3)}, economy={"xp_unit": np.float32(40.0)})
    assert sc.guardrails.anomaly_run == 3 and sc.economy.xp_unit == 40.0
    assert load("tiny", economy={"xp_unit": np.int64(40)}).economy.xp_unit == 40.0  # ints are numbers
    with pytest.raises(ScenarioError, match=r"economy.xp_unit: expected a number, got str '40'"):
        load("tiny", economy={"xp_unit": "40"})
    with pytest.raises(ScenarioError, match=r"economy.xp_unit: expected a number, got bool"):
        load("tiny", economy={"xp_unit": True})
    with pytest.raises(ScenarioError, match=r"economy.xp_unit: must be finite"):
        load("tiny", economy={"xp_unit": float("inf")})


def test_yaml_exponent_literals_are_numbers(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("a: 1e5\nb: 2E+3\nc: 1e-3\nd: 1.5e3\ne: -1e2\nf: '1e5'\ng: 1_000\nh: 0x10\ni: 1.0e+2\n")
    d = read_yaml(p)
    assert d == {"a": 100000, "b": 2000, "c": 0.001, "d": 1500.0, "e": -100, "f": "1e5", "g": 1000,
                 "h": 16, "i": 100.0}
    assert [type(d[k]) for k in "abcde"] == [int, int, float, float, int]
    assert yaml.safe_load("a: 1e5")["a"] == "1e5"  # PyYAML's own loader is left alone


def test_yaml_n_users_in_exponent_form(tmp_path):
    src = (load.__globals__["find"]("tiny")).read_text()
    p = tmp_path / "s.yaml"
    p.write_text(src.replace("n_users: 600", "n_users: 6e2"))
    assert load(p).n_users == 600
    p.write_text(src.replace("n_users: 600", "n_users: 600.0"))
    with pytest.raises(ScenarioError, match=r"n_users: expected an integer, got float 600.0 \(write 600\)"):
        load(p)


@pytest.mark.parametrize("bad", [123, 1.5, None, ["tiny"], {"name": "tiny"}, b"tiny"])
def test_scenario_of_the_wrong_type(bad):
    with pytest.raises(ScenarioError, match=rf"scenario: expected a scenario name .* got {type(bad).__name__}"):
        EconomyEnv(bad)


def test_scenario_path_and_object(tmp_path):
    from pathlib import Path

    sc = load("tiny")
    assert EconomyEnv(sc).scenario is sc
    assert EconomyEnv(Path(sc.source)).scenario.n_users == sc.n_users


@pytest.mark.parametrize("bad", ["1", 1.0, True, np.bool_(True), np.float64(1.0)])
def test_num_threads_refuses_non_integers(bad):
    msg = rf"num_threads: expected an integer 1\.\.\d+ or None .* got {type(bad).__name__}"
    with pytest.raises(ValueError, match=msg):
        EconomyEnv("tiny", num_threads=bad)


@pytest.mark.parametrize("bad", [0, -1, 10**6])
def test_num_threads_out_of_range(bad):
    with pytest.raises(ValueError, match="num_threads="):
        EconomyEnv("tiny", num_threads=bad)


def test_num_threads_takes_numpy_integers():
    assert EconomyEnv("tiny", num_threads=np.int64(1)).num_threads == 1


def test_default_threads_by_population_size():
    top = numba.config.NUMBA_NUM_THREADS
    assert threads_for(10) == threads_for(USERS_PER_THREAD - 1) == 1
    assert threads_for(2 * USERS_PER_THREAD - 1) == 1
    assert threads_for(2 * USERS_PER_THREAD) == min(2, top)
    assert threads_for(10**9) == top
    assert EconomyEnv("tiny").num_threads == 1
    assert EconomyEnv("tiny", n_users=np.int64(250_000)).num_threads == min(5, top)
