"""The static oracle (:mod:`arena_env.evaluation.oracle`), the leaderboards' unit: looked up in the shipped
cards, else in the cache, else computed and cached; the ``fixed`` agent that plays it; the reference
rows a tournament adds.  The independent checks: the card's static optimum is what the oracle's
search finds, and the tournament's ``oracle-static`` row scores exactly what the card machinery's
fixed-config episode scores on the same seed."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import agents
from agents.protocol import Context, Signals
from arena_env.economy import card as C
from arena_env.economy.params import PARAM_NAMES
from arena_env.economy.scenario import load
from arena_env.evaluation import oracle, tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig

ROOT = Path(__file__).resolve().parents[1]
OVER = {"max_days": 12}  # tiny, shortened: no shipped card has this digest, so the oracle is computed


def card(name):
    return json.loads((ROOT / "docs" / "cards" / name / "card.json").read_text())


def without_source(rec):
    return {k: v for k, v in rec.items() if k != "source"}


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    """The oracle of tiny with ``OVER``, computed into a fresh cache directory: (record, cache dir)."""
    cache = tmp_path_factory.mktemp("oracles")
    return oracle.static_oracle("tiny", OVER, cache=cache), cache


def test_default_oracle_is_the_shipped_cards_static_optimum(tmp_path):
    rec = oracle.static_oracle("default", cache=tmp_path)
    shipped = card("default")
    assert rec["source"].startswith("card:") and rec["source"].endswith("docs/cards/default/card.json")
    assert rec["config"] == shipped["static_optimum"]["config"] and rec["digest"] == shipped["scenario"]["digest"]
    assert rec["train_seeds"] == [0, 1, 2] and rec["scenario"] == "default" and rec["model"]
    assert list(tmp_path.iterdir()) == []  # nothing computed, nothing cached
    # the quick tournament plays default as shipped (no n_users override), so its oracle is the card's
    cfg = tournament.with_oracles(tournament.default_config(2), workers=1, cache=tmp_path)
    assert cfg.overrides == {} and cfg.oracles["default"]["source"].startswith("card:")
    assert cfg.references("default")[-1].params == {"config": shipped["static_optimum"]["config"]}
    # an override changes the digest: the card no longer applies (checked without computing anything)
    assert C.scenario_digest(load("default", max_days=12)) != shipped["scenario"]["digest"]


def test_the_shipped_card_is_the_oracle_search(tmp_path):
    """Skipping the cards, the search on training seeds 0..2 finds the tiny card's static optimum."""
    rec = oracle.static_oracle("tiny", cards=None, cache=tmp_path, workers=1)
    so = card("tiny")["static_optimum"]
    assert rec["source"] == "computed" and rec["digest"] == card("tiny")["scenario"]["digest"]
    assert rec["config"] == so["config"] and rec["log2_multipliers"] == so["log2_multipliers"]
    assert rec["train_gain"] == pytest.approx(so["search"]["train_gain"], abs=1e-12)
    assert rec["search"]["configs_evaluated"] == so["search"]["configs_evaluated"]


def test_a_computed_oracle_is_cached_and_read_back_identical(computed):
    first, cache = computed
    sc = load("tiny", **OVER)
    digest = C.scenario_digest(sc)
    path = cache / f"{digest}-t3.json"
    assert first["source"] == "computed" and first["digest"] == digest and path.is_file()
    assert json.loads(path.read_text()) == first  # the cache file holds the record
    assert sorted(first["config"]) == sorted(PARAM_NAMES) and first["train_seeds"] == [0, 1, 2]
    env = C.make_env(sc)
    cfg = np.array([first["config"][k] for k in PARAM_NAMES])
    assert np.all(cfg >= np.asarray(env.guardrail_config.lo)) and np.all(cfg <= np.asarray(env.guardrail_config.hi))
    second = oracle.static_oracle("tiny", OVER, cache=cache)
    assert second["source"] == f"cache:{path}" and without_source(second) == without_source(first)
    # env-only keywords do not change the scenario, hence not the oracle
    third = oracle.static_oracle("tiny", {**OVER, "info_level": "light", "num_threads": 1}, cache=cache)
    assert third["source"] == f"cache:{path}"
    assert len(list(cache.iterdir())) == 1  # no temporary file left behind


def test_the_recorded_training_gain_is_the_fixed_config_over_hold_on_the_training_seeds(computed):
    rec, _ = computed
    sc = load("tiny", **OVER)
    env = C.make_env(sc)
    tenant = tuple(int(v) for v in env.tenant_vector)
    phases = C.schedule([tuple(rec["config"][k] for k in PARAM_NAMES)], [], tenant, sc.max_days)
    gain = np.mean([C.run_episode(env, phases, s)["return"] - C.run_episode(env, (), s)["return"]
                    for s in rec["train_seeds"]])
    assert rec["train_gain"] == pytest.approx(gain, rel=1e-9, abs=1e-12) and rec["train_gain"] >= 0


@pytest.mark.parametrize("damage", [
    "truncated",
    "config is not a mapping",
    "null",
    "list",
    "config value not an integer",
    "config missing a parameter",
])
def test_a_damaged_cache_file_is_recomputed(computed, tmp_path, damage):
    first, cache = computed
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    (path,) = tmp_path.glob("*.json")
    text = path.read_text()
    partial = dict(first["config"])
    partial.pop("photoXp")
    path.write_text({"truncated": text[:len(text) // 2], "null": "null\n", "list": "[1, 2]\n",
                     "config is not a mapping": json.dumps({**first, "config": [1, 2, 3]}),
                     "config value not an integer": json.dumps({**first, "config": {**first["config"], "scanXp": "x"}}),
                     "config missing a parameter": json.dumps({**first, "config": partial})}[damage])
    again = oracle.static_oracle("tiny", OVER, cache=tmp_path)
    assert again["source"] == "computed" and without_source(again) == without_source(first)
    assert json.loads(path.read_text()) == again  # overwritten with the good record


def test_with_oracles_leaves_configs_without_oracle_alone(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("scenarios: [tiny]\nseeds: 2\noracle: false\noverrides: {max_days: 7}\nagents: [random]\n")
    cfg = tournament.load_config(path)
    assert cfg.oracle is False
    assert tournament.with_oracles(cfg, workers=1, cache=tmp_path / "cache") is cfg
    assert cfg.references("tiny") == () and [c.agents for c in cfg.cells()] == [("random",)] * 2
    assert not (tmp_path / "cache").exists()  # nothing looked up or computed
    h2h = TournamentConfig((AgentSpec("a", "hold"), AgentSpec("b", "random")), ("tiny",), 1,
                           tracks=("head-to-head",), overrides={"max_days": 7})
    assert tournament.with_oracles(h2h, workers=1, cache=tmp_path / "cache") is h2h and h2h.references("tiny") == ()
    assert not (tmp_path / "cache").exists()
    path.write_text(path.read_text().replace("oracle: false", "oracle: true"))
    assert tournament.load_config(path).oracle is True


def test_the_reference_rows_of_a_tournament():
    rec = {"config": {"scanXp": 12, "feedbackXp": 20}}
    cfg = TournamentConfig((AgentSpec("rnd", "random"),), ("tiny",), 2, overrides={"max_days": 7})
    with pytest.raises(tournament.TournamentConfigError, match="static oracle of scenario tiny is not resolved"):
        cfg.cells()
    cfg = dataclasses.replace(cfg, oracles={"tiny": rec})
    assert tournament.with_oracles(cfg) is cfg  # already resolved
    hold, orc = cfg.references("tiny")  # no agent is the registered hold: a hold reference row is added
    assert (hold.label, hold.agent, hold.baseline, hold.reference) == ("hold", "hold", True, True)
    assert (orc.label, orc.agent, orc.params, orc.reference) == ("oracle-static", "fixed", {"config": rec["config"]},
                                                                 True)
    assert [c.agents for c in cfg.cells()] == [("rnd",)] * 2 + [("hold",)] * 2 + [("oracle-static",)] * 2
    assert cfg.spec("oracle-static", "tiny") == orc
    with pytest.raises(KeyError):
        cfg.spec("oracle-static")  # a reference row needs its scenario
    kept = dataclasses.replace(cfg, agents=(AgentSpec("keep", "hold"), AgentSpec("rnd", "random")))
    assert [a.label for a in kept.references("tiny")] == ["oracle-static"]  # the registered hold is there


def test_the_oracle_row_plays_the_oracle_config(computed, tmp_path):
    """The independent check: the tournament's oracle-static row scores what the card machinery's fixed-config
    episode scores on the same seed, and its hold row what the card's hold episode scores."""
    rec, cache = computed
    cfg = TournamentConfig((AgentSpec("rnd", "random", {"every": 2}, baseline=True),), ("tiny",), 2, overrides=OVER)
    cfg = tournament.with_oracles(cfg, workers=1, cache=cache)
    assert cfg.oracles["tiny"]["source"].startswith("cache:")
    rows = tournament.run(cfg, tmp_path / "run", workers=1)
    sc = load("tiny", **OVER)
    env = C.make_env(sc)
    tenant = tuple(int(v) for v in env.tenant_vector)
    target = tuple(rec["config"][k] for k in PARAM_NAMES)
    phases = C.schedule([target], [], tenant, sc.max_days)
    assert phases != ()  # the oracle is not the tenant config: the check compares two real episodes
    by = {(r["agent"], r["seed"]): r for r in rows}
    assert {a for a, _ in by} == {"rnd", "hold", "oracle-static"}
    for seed in (1_000_000, 1_000_001):
        orc, hold = by[("oracle-static", seed)], by[("hold", seed)]
        assert not orc["failed"] and orc["reference"] and orc["kind"] == "fixed" and not orc["baseline"]
        assert orc["score"] == C.run_episode(env, phases, seed)["return"]
        assert json.loads(orc["final_config"]) == rec["config"]  # the delta clamp got there and it stayed
        assert hold["reference"] and hold["baseline"] and hold["score"] == C.run_episode(env, (), seed)["return"]
    meta = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert meta["oracles"]["tiny"]["config"] == rec["config"]


def context(config, can_update=True):
    return Context(Signals(0, 0, 0, 0, 0, {}), config, day=1, next_allowed_update=None if can_update else 1e9)


def test_the_fixed_agent_requests_its_target_whenever_it_may():
    start = {k: 10 for k in PARAM_NAMES}
    a = agents.make("fixed", config={"scanXp": 20, "feedbackXp": 5.0})
    a.reset(seed=3)
    upd = a.act(context(start))
    assert upd is not None and dict(upd.overrides) == {"scanXp": 20, "feedbackXp": 5}  # only the listed keys
    assert all(type(v) is int for v in upd.overrides.values())
    assert a.act(context(start, can_update=False)) is None  # the guardrails could not accept: no spam
    assert a.act(context({**start, "scanXp": 20, "feedbackXp": 5})) is None  # there: nothing to ask
    assert a.act(context({**start, "scanXp": 20, "feedbackXp": 5, "photoXp": 99})) is None  # unlisted keys are free
    assert a.act(context({**start, "scanXp": 15, "feedbackXp": 5})) is not None  # clamped halfway: ask again


@pytest.mark.parametrize("config, match", [
    ({"scanXpp": 12}, r"unknown parameter\(s\) scanXpp"),
    ({"scanXp": -1}, r"fixed: config.scanXp: expected an integer in \[0, 3.40282e\+38\], got -1"),
    ({}, "config must be a non-empty mapping"),
    (None, "config must be a non-empty mapping"),
    ([12] * 10, "config must be a non-empty mapping"),
    ({"scanXp": 1.5}, r"fixed: config.scanXp: expected an integer in \[0, 3.40282e\+38\], got 1.5"),
    ({"scanXp": True}, r"fixed: config.scanXp: expected an integer in \[0, 3.40282e\+38\], got True"),
    ({"scanXp": "12"}, r"fixed: config.scanXp: expected an integer in \[0, 3.40282e\+38\], got '12'"),
    ({"scanXp": 1e39}, r"config.scanXp: expected an integer in \[0, 3.40282e\+38\], got 1e\+39"),  # no float32 action
])
def test_the_fixed_agent_refuses_bad_configs(config, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        agents.make("fixed", config=config)
    path = tmp_path / "t.yaml"  # and a tournament file says which agent and key
    path.write_text("scenarios: [tiny]\nagents:\n  - {agent: fixed, params: {config: " + json.dumps(config) + "}}\n")
    with pytest.raises(tournament.TournamentConfigError, match=r"agents\[0\]\.params: fixed: "):
        tournament.load_config(path)
