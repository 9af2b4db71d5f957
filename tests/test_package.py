"""Package hygiene: no global random state, no import-time side effects, the design card's layout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(
    r"np\.random\.(seed|rand|randn|randint|random|choice|normal|uniform|poisson|binomial|shuffle|permutation"
    r"|default_rng\(\))\b|^\s*import random\b|^\s*from random import|random\.seed\(", re.M)


def test_no_global_random_state_in_the_package():
    offenders = []
    for pkg in ("arena_env", "agents"):
        for path in (ROOT / pkg).rglob("*.py"):
            for m in FORBIDDEN.finditer(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}: {m.group(0)!r}")
    assert not offenders, "module-level or unseeded randomness: " + "; ".join(offenders)


PHASES = ("day_params", "site_standing", "add_to_site", "recruit", "appraise", "choose_activity", "act_and_earn",
          "missions", "streaks", "adapt", "churn", "ledger", "price_ledger", "withhold")


def _kernels(module):
    return [n for n in dir(module) if not n.startswith("_") and type(getattr(module, n)).__name__ == "CPUDispatcher"
            and getattr(module, n).py_func.__module__ == module.__name__]


def test_every_kernel_has_a_numpy_twin():
    """Every Numba function of the population step (each phase included) and of the guardrail arithmetic
    has a NumPy twin of the same name and signature; the statistics have none (both backends use them)."""
    from arena_env.economy import (backends, guardrail_kernels, guardrail_ref, population, population_ref,
                                   stats_kernels)

    pairs = ((population, population_ref), (guardrail_kernels, guardrail_ref))
    names = {kern: _kernels(kern) for kern, _ in pairs}
    assert {"step_population", "pay_out", *PHASES} <= set(names[population])
    assert "clamp_updates" in names[guardrail_kernels]
    for kern, ref in pairs:
        for n in names[kern]:
            twin = getattr(ref, n, None)
            assert twin is not None and type(twin).__name__ == "function", f"{kern.__name__}.{n} has no NumPy twin"
            code = getattr(kern, n).py_func.__code__
            assert code.co_varnames[:code.co_argcount] == twin.__code__.co_varnames[:twin.__code__.co_argcount], \
                f"{n}: signatures differ"
    stats = _kernels(stats_kernels)
    assert "compare_to_control" in stats and "welch_test" in stats
    for n in stats:
        assert not hasattr(population_ref, n) and not hasattr(guardrail_ref, n), f"{n}: statistics have no twin"
    nb, npy = backends.get("numba"), backends.get("numpy")
    assert nb.compare_to_control is npy.compare_to_control is stats_kernels.compare_to_control
    assert nb.step_population is population.step_population and npy.step_population is population_ref.step_population


def test_import_has_no_side_effects():
    # third-party libraries may add warning filters when imported: import them first
    code = ("import sys, warnings, numba, gymnasium, pettingzoo, yaml; "
            "before = list(warnings.filters); out = sys.stdout; "
            "import arena_env, arena_env.economy_v1, agents; "
            "assert warnings.filters == before; assert sys.stdout is out; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_design_card_layout():
    for p in ("pyproject.toml", "README.md", "LICENSE", "Makefile", ".ci/run", "arena_env", "agents",
              "configs/scenarios", "tests", "docs", "benchmarks/bench_env.py"):
        assert (ROOT / p).exists(), p
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_paths_inside_the_checkout_are_shown_relative_to_it(tmp_path):
    from arena_env.paths import PROJECT_ROOT, shown

    assert shown(PROJECT_ROOT / "configs" / "scenarios" / "default.yaml") == "configs/scenarios/default.yaml"
    assert shown(PROJECT_ROOT / "configs" / ".." / "docs" / "cards") == "docs/cards"
    outside = tmp_path / "my.yaml"
    assert shown(outside) == str(outside) and shown(str(outside)) == str(outside)
