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


def test_every_kernel_has_a_numpy_twin():
    from arena_env.economy import kernels, reference

    names = [n for n in dir(kernels) if not n.startswith("_") and type(getattr(kernels, n)).__name__ == "CPUDispatcher"
             and getattr(kernels, n).py_func.__module__.startswith("arena_env.economy")]
    assert "step_population" in names and "clamp_updates" in names and "compare_to_control" in names
    for n in names:
        twin = getattr(reference, n, None)
        assert twin is not None and type(twin).__name__ == "function", f"{n} has no NumPy twin"
        k_args = getattr(kernels, n).py_func.__code__.co_varnames[:getattr(kernels, n).py_func.__code__.co_argcount]
        r_args = twin.__code__.co_varnames[:twin.__code__.co_argcount]
        assert k_args == r_args, f"{n}: signatures differ"


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
