"""Scenario files: every shipped one validates; bad files and overrides fail with clear messages."""

from __future__ import annotations

import pytest

from arena_env.economy import scenario
from arena_env.economy.scenario import ScenarioError, load, scenario_names


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_scenarios_validate(name):
    sc = load(name)
    assert sc.name == name
    assert sc.segments and sc.presets
    assert sc.source.endswith(f"{name}.yaml")


def test_keyword_overrides_merge():
    sc = load("default", n_users=123, economy={"rank_strength": 0.0})
    assert sc.n_users == 123
    assert sc.economy.rank_strength == 0.0
    assert sc.economy.xp_unit == load("default").economy.xp_unit  # siblings kept


def write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


BASE = "name: s\nsegments: [{name: a}]\n"


@pytest.mark.parametrize("text, key, hint", [
    (BASE + "n_usres: 10\n", "n_usres", "allowed keys"),
    (BASE + "economy: {rank_strenght: 1}\n", "economy.rank_strenght", "allowed keys"),
    (BASE + "n_agents: 7\n", "n_agents", "1..4"),
    (BASE + "n_users: ten\n", "n_users", "expected a number"),
    (BASE + "max_days: 2.5\n", "max_days", "integer"),
    ("name: s\nsegments: [{name: a, churn_logit: 99}]\n", "segments[0].churn_logit", "out of range"),
    (BASE + "tenant: {scanXP: 3}\n", "tenant.scanXP", "unknown economy parameter"),
    (BASE + "objective: {weights: {RETENTION: 1}}\n", "objective.weights.RETENTION", "unknown metric"),
    (BASE + "allocation: [1, 1]\n", "allocation", "needs 3 weights"),
    (BASE + "schedule: [{day: 3, action: explode}]\n", "schedule[0].action", "unknown action"),
    (BASE + "presets: [{name: p, overrides: {scanXp: 9999}}]\n", "presets[0].overrides.scanXp", "out of range"),
    ("name: s\nsegments: []\n", "segments", "at least one"),
    (BASE + "economy: {weekday: [1, 2]}\n", "economy.weekday", "7 values"),
])
def test_bad_values_name_file_and_key(tmp_path, text, key, hint):
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as exc:
        load(p)
    msg = str(exc.value)
    assert str(p) in msg and f"{key}:" in msg and hint in msg


def test_malformed_yaml_names_the_line(tmp_path):
    p = write(tmp_path, "name: s\nsegments: [{name: a}\n")
    with pytest.raises(ScenarioError, match=r"malformed YAML at line \d+"):
        load(p)


def test_numeric_strings_from_yaml_are_coerced(tmp_path):
    p = write(tmp_path, BASE + "economy: {inflation_xp: 1e4}\n")  # PyYAML reads 1e4 as a string
    assert load(p).economy.inflation_xp == 10000.0


def test_unknown_scenario_lists_known_ones():
    with pytest.raises(ScenarioError, match="known: .*default"):
        load("no-such-scenario")


def test_scenarios_are_frozen():
    sc = load("tiny")
    with pytest.raises(AttributeError):
        sc.n_users = 5
    assert scenario.from_mapping({"name": "x", "segments": [{"name": "a"}]}).n_agents == 2


def test_control_needs_a_positive_allocation(tmp_path):
    p = write(tmp_path, BASE + "allocation: [0, 1, 1]\n")
    with pytest.raises(ScenarioError, match="allocation: .*control included"):
        load(p)


def test_scenario_path_variable_and_yml(tmp_path, monkeypatch):
    (tmp_path / "mine.yml").write_text(BASE)
    monkeypatch.setenv("ARENA_SCENARIO_PATH", str(tmp_path))
    assert "mine" in scenario_names()
    assert load("mine").source.endswith("mine.yml")
