"""The shipped scenarios' report cards (docs/cards/<name>/card.json): current, meeting the benchmark
properties or saying why not, and their claims hold again on fresh seeds (neither the searches'
training seeds nor the card's evaluation seeds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from arena_env.economy import card as C
from arena_env.economy.params import PARAM_NAMES
from arena_env.economy.scenario import load, scenario_names

CARDS = Path(__file__).resolve().parents[1] / "docs" / "cards"
FRESH = [3_000_000 + i for i in range(3)]


def _card(name):
    path = CARDS / name / "card.json"
    assert path.exists(), f"no card for {name}: run python -m arena_env check-scenario {name} --out docs/cards/{name}"
    return json.loads(path.read_text())


def _phases(phases):
    return tuple((p["from_day"], tuple(p["config"][k] for k in PARAM_NAMES)) for p in phases)


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_card_is_current_and_meets_the_properties(name):
    card = _card(name)
    sc = load(name, **card["scenario"]["overrides"])
    assert card["scenario"]["digest"] == C.scenario_digest(sc), (
        f"stale card: {name}.yaml or the model changed; regenerate docs/cards/{name}")
    assert card["settings"]["mode"] == "full"
    assert card["scenario"]["source"] == f"configs/scenarios/{name}.yaml"  # not the path of the machine that made it
    bad = [(v["property"], v["figure"]) for v in card["verdict"] if v["status"] not in ("PASS", "EXEMPT", "N/A")]
    assert not bad, bad
    assert all(v["reason"] for v in card["verdict"] if v["status"] == "EXEMPT")


def _intervals(x):
    """Every paired_ci result inside a card (dicts with mean, sd, n, lo and hi)."""
    if isinstance(x, dict):
        if {"mean", "sd", "n", "lo", "hi"} <= x.keys():
            yield x
        for v in x.values():
            yield from _intervals(v)
    elif isinstance(x, list):
        for v in x:
            yield from _intervals(v)


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_card_intervals_are_those_of_the_current_statistics(name):
    """The digest covers the scenario and the model, not the statistics: a card made before a change of
    the t quantile would keep intervals the command no longer prints."""
    found = 0
    for ci in _intervals(_card(name)):
        if ci["n"] > 1 and ci["sd"] is not None and np.isfinite(ci["sd"]):
            half = float(C.student_q975(float(ci["n"] - 1))) * ci["sd"] / math.sqrt(ci["n"])
            assert (ci["lo"], ci["hi"]) == (ci["mean"] - half, ci["mean"] + half), ci
            found += 1
    assert found >= 20


def test_adapting_pays_on_at_least_three_shipped_scenarios_nonstationary_among_them():
    passing = {name for name in scenario_names()
               if any(v["key"] == "adaptive" and v["status"] == "PASS" for v in _card(name)["verdict"])}
    assert "nonstationary" in passing and len(passing) >= 3, passing


@pytest.mark.parametrize("name", ["default", "nonstationary"])
def test_card_claims_hold_on_fresh_seeds(name):
    """The static optimum beats the defaults, the adaptive schedule beats the static optimum, and the
    control does not move, on seeds no search or evaluation of the card has seen."""
    card = _card(name)
    env = C.make_env(load(name, **card["scenario"]["overrides"]))
    static = _phases([{"from_day": 0, "config": card["static_optimum"]["config"]}])
    adaptive = _phases(card["adaptive"]["phases"])
    noise = card["signal_to_noise"]["seed_noise"]
    for seed in FRESH:
        hold = C.run_episode(env, (), seed, detail=True)
        opt = C.run_episode(env, static, seed, detail=True)
        ad = C.run_episode(env, adaptive, seed)
        assert opt["return"] - hold["return"] > 3 * noise, (seed, opt["return"], hold["return"])
        assert ad["return"] - opt["return"] > 0, (seed, ad["return"], opt["return"])
        np.testing.assert_array_equal(hold["control_i"], opt["control_i"])
        np.testing.assert_array_equal(hold["control_f"], opt["control_f"])
