"""Scenario files: every shipped one validates; bad files and overrides fail with clear messages."""

from __future__ import annotations

import math

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
    (BASE + "n_users: ten\n", "n_users", "expected an integer"),
    (BASE + "economy: {xp_unit: ten}\n", "economy.xp_unit", "expected a number"),
    (BASE + "max_days: 2.5\n", "max_days", "integer"),
    ("name: s\nsegments: [{name: a, churn_logit: 99}]\n", "segments[0].churn_logit", "out of range"),
    (BASE + "tenant: {scanXP: 3}\n", "tenant.scanXP", "unknown economy parameter"),
    (BASE + "objective: {kind: tendedloop, weights: {RETENTION: 1}}\n", "objective.weights.RETENTION", "unknown metric"),
    (BASE + "objective: {kind: money}\n", "objective.kind", "expected value or tendedloop"),
    (BASE + "allocation: [1, 1]\n", "allocation", "needs 3 weights"),
    (BASE + "schedule: [{day: 3, action: explode}]\n", "schedule[0].action", "unknown action"),
    (BASE + "presets: [{name: p, overrides: {scanXp: 9999}}]\n", "presets[0].overrides.scanXp", "out of range"),
    ("name: s\nsegments: []\n", "segments", "at least one"),
    (BASE + "economy: {weekday: [1, 2]}\n", "economy.weekday", "7 values"),
    ("name: s\nsegments: [{name: a}, {name: b}, {name: a}]\n", "segments[2].name", "also the name of segments[0]"),
    ("name: s\nsegments: [{weight: 1}, {weight: 2}]\n", "segments[1].name", "'users' is also the name of segments[0]"),
    (BASE + "presets: [{name: lean}, {name: lean, overrides: {scanXp: 4}}]\n", "presets[1].name", "a name of its own"),
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


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys silently; every config of the project is read by read_yaml."""
    from arena_env.economy.scenario import read_yaml

    p = write(tmp_path, "name: s\neconomy: {inflation_xp: 1, inflation_xp: 2}\n")
    with pytest.raises(ScenarioError, match=r"malformed YAML at line 2, .*duplicate key 'inflation_xp' \(first at "
                                            r"line 2\): give each key once"):
        load(p)
    (tmp_path / "t.yaml").write_text("seeds: 2\nagents: [hold]\nseeds: 3\n")
    with pytest.raises(ScenarioError, match=r"line 3, column 1: duplicate key 'seeds' \(first at line 1\)"):
        read_yaml(tmp_path / "t.yaml")
    (tmp_path / "m.yaml").write_text("base: &b {x: 1, y: 2}\nd: {<<: *b, x: 3}\n")  # a merge key may be overridden
    assert read_yaml(tmp_path / "m.yaml")["d"] == {"x": 3, "y": 2}


def test_numeric_strings_from_yaml_are_coerced(tmp_path):
    p = write(tmp_path, BASE + "economy: {inflation_xp: 1e4}\n")  # YAML 1.1 reads 1e4 as a string; the loader does not
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


@pytest.mark.parametrize("text, key, value, bounds, fix", [
    # a tenant scanXp of 30 with bounds [0, 20] would turn a +5% request into a jump to 20 (-33%)
    (BASE + "tenant: {scanXp: 30}\nguardrails: {bounds: {scanXp: [0, 20]}}\n", "tenant.scanXp", "30", "[0, 20]",
     "widen guardrails.bounds.scanXp"),
    # a global default that the tenant does not override counts too
    (BASE + "guardrails: {bounds: {scanXp: [0, 5]}}\n", "tenant.scanXp", "global default 10", "[0, 5]",
     "set tenant.scanXp to a value in [0, 5]"),
    (BASE + "tenant: {photoXp: 250}\n", "tenant.photoXp", "250", "[0, 200]", "params.ABSOLUTE_BOUNDS"),
    (BASE + "guardrails: {bounds: {feedbackXp: [0, 30]}}\npresets: [{name: a}, {name: b}, "
            "{name: c, overrides: {feedbackXp: 40}}]\n", "presets[2].overrides.feedbackXp", "40", "[0, 30]",
     "set presets[2].overrides.feedbackXp to a value in [0, 30] or widen guardrails.bounds.feedbackXp"),
    (BASE + "guardrails: {bounds: {scanDailyCap: [5, 50]}}\npresets: [{name: a, overrides: {scanDailyCap: 2}}]\n",
     "presets[0].overrides.scanDailyCap", "2", "[5, 50]", "guardrails.bounds.scanDailyCap"),
])
def test_tenant_and_presets_lie_within_the_hard_bounds(tmp_path, text, key, value, bounds, fix):
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as exc:
        load(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: {key}: ") and value in msg and bounds in msg and fix in msg, msg


def test_values_on_the_hard_bounds_are_fine(tmp_path):
    text = (BASE + "tenant: {scanXp: 20, feedbackDailyCap: 1}\nguardrails: {bounds: {scanXp: [0, 20]}}\n"
            "presets: [{name: a, overrides: {scanXp: 0, photoXp: 200}}]\n")
    sc = load(write(tmp_path, text))
    assert sc.tenant_config["scanXp"] == 20 and sc.presets[0].overrides == {"scanXp": 0, "photoXp": 200}


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_scenarios_start_inside_their_hard_bounds(name):
    sc = load(name)
    bounds = {**scenario.ABSOLUTE_BOUNDS, **(sc.guardrails.bounds or {})}
    for layer in (sc.tenant_config, *((p.overrides or {}) for p in sc.presets)):
        for k, v in layer.items():
            assert bounds[k][0] <= v <= bounds[k][1], (name, k, v)


def test_a_directory_named_like_a_scenario_file_is_reported_as_one(tmp_path):
    d = tmp_path / "mine.yaml"
    d.mkdir()
    with pytest.raises(ScenarioError, match="is a directory, not a file"):
        load(d)


_DOC_TABLES = {"Top level (`Scenario`)": scenario.Scenario, "`recruitment`": scenario.Recruitment,
               "`economy`": scenario.Economy, "`guardrails`": scenario.GuardrailSettings,
               "`budget`": scenario.Budget, "`schedule[i]`": scenario.ScheduledAction,
               "`segments[i]`": scenario.Segment}


@pytest.mark.parametrize("title", list(_DOC_TABLES))
def test_docs_key_tables_give_the_dataclass_defaults_and_ranges(title):
    """docs/scenarios.md lists every key with the default and range of its dataclass field."""
    import dataclasses
    import re

    from arena_env.paths import PROJECT_ROOT

    text = (PROJECT_ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    section = re.search(r"### " + re.escape(title) + r"\n(.*?)(?=\n#)", text, re.S).group(1)
    fields = {f.name: f for f in dataclasses.fields(_DOC_TABLES[title])}
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `")]
    assert {r[0].strip("`") for r in rows} == set(fields) - {"source"}
    for key, _type, default, rng, *_ in rows:
        f = fields[key.strip("`")]
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            assert float(default.strip("`")) == f.default, f"{key}: docs say {default}, the code {f.default}"
        lo, hi = f.metadata.get("range", (None, None))
        m = re.match(r"(?:each )?([-0-9.e]+) \.\. ([-0-9.einf]+)", rng)
        if m and lo is not None:
            assert float(m.group(1)) == lo, f"{key}: docs say {rng}, the code {lo}..{hi}"
            assert float(m.group(2)) == (math.inf if hi is None else hi), f"{key}: docs say {rng}, the code {lo}..{hi}"


def test_a_file_that_is_not_utf8_names_the_file_line_and_fix(tmp_path):
    """Latin-1 bytes (a comment typed in another encoding) were a bare UnicodeDecodeError without the file."""
    p = tmp_path / "s.yaml"
    p.write_bytes(BASE.encode() + "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError) as exc:
        load(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: not UTF-8 text: byte 0xe9 at line 3, column 17") and "save the file as UTF-8" in msg
    p.write_bytes(BASE.encode() + "description: caf\xe9\n".encode("utf-8"))
    assert load(p).description == "caf\xe9"
