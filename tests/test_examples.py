"""Smoke test: every script in examples/ runs (short episodes) and prints a result per agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(path):
    res = subprocess.run([sys.executable, str(path), "--days", "14", "--seed", "3"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    if "replay" in path.stem:  # an off-policy evaluation: estimates with intervals, and the truth
        assert "estimate" in res.stdout and "true value" in res.stdout
    else:
        assert "variant_0" in res.stdout and "total reward" in res.stdout
