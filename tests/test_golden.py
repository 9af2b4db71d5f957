"""Golden regression: each scenario's 60-day fingerprint is unchanged (see tests/golden.py)."""

from __future__ import annotations

import json

import pytest

from arena_env.economy.scenario import scenario_names
from tests import golden


@pytest.mark.parametrize("name", scenario_names())
def test_golden_fingerprint(name):
    path = golden.DIR / f"{name}.json"
    assert path.exists(), f"no golden file for {name}: run `make golden` and commit tests/golden/{name}.json"
    want = json.loads(path.read_text())
    got = golden.fingerprint(name)
    hint = "the trajectory changed: if intended, bump the env version and run `make golden` (see tests/golden.py)"
    assert got["enrolled"] == want["enrolled"], hint
    assert got["churned"] == want["churned"], hint
    assert got["active_last_day"] == want["active_last_day"], hint
    assert got["rewards"] == pytest.approx(want["rewards"], rel=1e-9, abs=1e-9), hint
    assert got["sha256"] == want["sha256"], hint
