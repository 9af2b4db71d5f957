"""The scenario report card (arena_env/economy/card.py, ``python -m arena_env check-scenario``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy import stats

from arena_env.__main__ import main
from arena_env.economy import card as C
from arena_env.economy import layout as L
from arena_env.economy.params import PARAM_NAMES
from arena_env.economy.scenario import METRIC_NAMES, deep_merge, find, read_yaml

SMALL = {"n_users": 200, "max_days": 20}


def tiny_file(tmp_path, **over) -> str:
    """The tiny scenario with small overrides, as a file (the CLI takes a name or a path)."""
    data = deep_merge(read_yaml(find("tiny")), {**SMALL, **over})
    path = tmp_path / "tiny-small.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


# --- pure pieces ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 5, 30])
def test_paired_ci_agrees_with_scipy(n):
    rng = np.random.default_rng(n)
    a, b = rng.normal(1.0, 2.0, n), rng.normal(0.5, 2.0, n)
    ci = C.paired_ci(a, b)
    d = a - b
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    assert ci["mean"] == pytest.approx(d.mean())
    assert (ci["lo"], ci["hi"]) == pytest.approx((d.mean() - half, d.mean() + half))
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (ci["lo"], ci["hi"]) == pytest.approx((ref.low, ref.high))
    assert ci["excludes_zero"] == (stats.ttest_rel(a, b).pvalue < 0.05)
    assert ci["n"] == n and ci["sign"] == ("+" if d.mean() > 0 else "-")


def test_paired_ci_edge_cases():
    one = C.paired_ci([1.0], [0.0])
    assert one["mean"] == 1.0 and np.isnan(one["lo"]) and not one["excludes_zero"]
    zero = C.paired_ci([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert zero["mean"] == 0.0 and zero["sign"] == "0" and not zero["excludes_zero"]


def _quadratic(target, coupling=0.0):
    t = np.asarray(target, dtype=float)

    def objective(points):
        out = []
        for p in points:
            d = np.asarray(p, dtype=float) - t
            out.append(-float(d @ d) - coupling * float(d[0] * d[1]))
        return out
    return objective


GRID = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)


def test_coordinate_ascent_finds_interior_optimum():
    target = (1.0, -0.5, 1.5)
    res = C.coordinate_ascent(_quadratic(target), (0.0, 0.0, 0.0), [GRID] * 3, max_rounds=5)
    assert res["point"] == target and res["value"] == 0.0 and res["converged"]
    assert res["value"] > res["start_value"] and all(m["gain"] > 0 for m in res["moves"])


def test_coordinate_ascent_coupled_objective():
    res = C.coordinate_ascent(_quadratic((1.0, -0.5), coupling=0.6), (0.0, 0.0), [GRID] * 2, max_rounds=10)
    assert res["point"] == (1.0, -0.5) and res["converged"]


def test_coordinate_ascent_optimum_at_a_bound():
    # the true optimum (5, -3) lies outside the grid: the ascent stops at the grid's corners
    res = C.coordinate_ascent(_quadratic((5.0, -3.0)), (0.0, 0.0), [GRID] * 2, max_rounds=5)
    assert res["point"] == (2.0, -2.0) and res["converged"]


def test_coordinate_ascent_batches_and_order():
    calls = []

    def objective(points):
        calls.append(list(points))
        return _quadratic((1.0, 1.0))(points)
    res = C.coordinate_ascent(objective, (0.0, 0.0), [GRID] * 2, max_rounds=3, order=[1, 0])
    assert res["point"] == (1.0, 1.0)
    assert res["moves"][0]["coordinate"] == 1  # visited first
    assert len(calls[1]) == len(GRID) - 1  # one batch per coordinate
    assert res["evaluated"] == len({p for c in calls for p in c})  # no point evaluated twice


def test_ties_do_not_move():
    res = C.coordinate_ascent(lambda pts: [0.0] * len(pts), (0.0,), [GRID], max_rounds=3)
    assert res["point"] == (0.0,) and res["moves"] == [] and res["rounds"] == 1


def test_configs_and_schedules():
    lo, hi = np.array([0, 1]), np.array([200, 100])
    assert C.multiplied_config((15, 1), (-1.0, -1.0), lo, hi) == (8, 1)  # 7.5 rounds away from zero; 0.5 -> lo 1
    assert C.multiplied_config((150, 60), (1.0, 1.0), lo, hi) == (200, 100)  # clipped to the bounds
    tenant = (10, 20)
    assert C.schedule([tenant], [], tenant, 30) == ()
    assert C.schedule([(5, 20), (5, 20)], [10], tenant, 30) == ((0, (5, 20)),)
    assert C.schedule([(5, 20), (6, 20)], [30], tenant, 30) == ((0, (5, 20)),)
    assert C.schedule([(5, 20), (6, 20)], [10], tenant, 30) == ((0, (5, 20)), (10, (6, 20)))


def test_switch_days_are_decision_days():
    """With weekly steps and a short episode the candidates were [1, 7]: a switch 'from day 1' that took
    effect on day 7, as the card did not say, and two candidates for one policy."""
    assert C.switch_day_candidates(C.QUICK.switch_fractions, 10, 7) == [7]
    assert C.switch_day_candidates(C.FULL.switch_fractions, 30, 7) == [7, 14, 21]
    assert C.switch_day_candidates(C.FULL.switch_fractions, 90, 1) == [15, 30, 45, 60]
    assert C.switch_day_candidates(C.QUICK.switch_fractions, 2, 1) == [1]
    assert C.switch_day_candidates(C.QUICK.switch_fractions, 7, 7) == [7]  # one step: no switch within the episode


def test_effect_timing_and_autocorr():
    diff = np.array([-1.0, -1.0, 0.5, 1.0, 1.0, 1.0, 1.0])
    t = C.effect_timing(diff, 1, tail_days=2)
    assert t["cum_positive_from_day"] == 4  # cumsum -1 -2 -1.5 -0.5 0.5 1.5 2.5
    assert t["half_effect_day"] == 2 and t["tail_mean"] == 1.0
    assert C.effect_timing(-np.ones(5))["cum_positive_from_day"] is None
    assert C.effect_timing(diff, 7, tail_days=14)["cum_positive_from_day"] == 28
    x = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    assert C.lag1_autocorr(x) < -0.5 and np.isnan(C.lag1_autocorr(np.ones(5)))


def test_training_and_evaluation_seeds_are_disjoint():
    ev, train = C.seed_lists(20, 6)
    assert train == list(range(6)) and ev[0] == C.EVAL_SEED_BASE and len(ev) == 20
    assert not set(ev) & set(train)
    with pytest.raises(ValueError, match="--seeds 2 or more"):
        C.seed_lists(1, 2)
    with pytest.raises(ValueError, match="--train-seeds 1 or more"):
        C.seed_lists(4, 0)


def test_evaluate_policies_returns_matrix():
    over = dict(SMALL)
    seeds = [C.EVAL_SEED_BASE, C.EVAL_SEED_BASE + 1]
    tenant = tuple(int(v) for v in C.make_env(C.load("tiny", **over)).tenant_vector)
    rich = C.schedule([tuple(2 * v for v in tenant)], [], tenant, SMALL["max_days"])
    R = C.evaluate_policies("tiny", [(), rich, ()], seeds, workers=1, overrides=over)
    assert R.shape == (3, 2) and np.array_equal(R[0], R[2]) and not np.array_equal(R[0], R[1])


def test_budget_series_fallback_matches_definition():
    sc = C.load("tiny", **SMALL, budget={"daily_xp_per_user": 20})
    env = C.make_env(sc)
    res = C.run_episode(env, (), 3, detail=True)
    b = res["budget"]
    assert b.shape == (SMALL["max_days"], 2) and (b[:, 0] > 0).all()
    if res["budget_source"] == "history_i":  # the fallback until the env exposes budget_history
        h = env.history_i
        assert np.allclose(b[:, 0], 20 * np.maximum(h[:, :, 0].sum(axis=1), 1))
        assert np.array_equal(b[:, 1], C.M.xp_total(h).sum(axis=1))


# --- the whole card ---------------------------------------------------------------------------------------

SECTIONS = ("## Verdict", "## 1. Levers", "## 2. Static optimum", "## 3. Best adaptive policy", "## 4. Signal to noise",
            "## 5. Does the control move?", "## 6. Budget adherence", "## 7. Time for the optimum")


def test_cli_end_to_end_quick(tmp_path, capsys):
    path = tiny_file(tmp_path, budget={"daily_xp_per_user": 25})
    out = tmp_path / "card"
    assert main(["check-scenario", path, "--quick", "--seeds", "3", "--train-seeds", "1", "--workers", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    md = (out / "card.md").read_text()
    card = json.loads((out / "card.json").read_text())
    assert printed.out.strip() == md.strip()
    for s in SECTIONS:
        assert s in md, s
    assert "100.0%" in printed.err  # the progress bar finished (stderr is not a terminal here)
    for key in ("scenario", "settings", "tenant_config", "bounds", "levers", "static_optimum", "adaptive",
                "signal_to_noise", "control", "budget", "time_to_effect", "verdict", "run", "exempt"):
        assert key in card, key
    assert [x["param"] for x in card["levers"]] == list(PARAM_NAMES)
    assert set(card["levers"][0]["low"]["metrics"]) == set(METRIC_NAMES)
    assert set(card["static_optimum"]["config"]) == set(PARAM_NAMES)
    assert [v["id"] for v in card["verdict"]] == list("abcdef")
    assert all(v["status"] in ("PASS", "FAIL", "EXEMPT", "N/A") for v in card["verdict"])
    assert card["budget"] is not None and 0 <= card["budget"]["hold"]["share_over_5pct"] <= 1
    assert card["control"]["bit_identical"] in (True, False)
    assert not set(card["settings"]["eval_seeds"]) & set(card["settings"]["train_seeds"])
    assert len(card["time_to_effect"]["daily_mean_diff"]) == SMALL["max_days"]


def test_one_and_two_workers_give_identical_cards():
    kw = dict(seeds=2, train_seeds=1, quick=True, overrides=dict(SMALL))
    one = C.to_jsonable(C.build_card("tiny", workers=1, **kw))
    two = C.to_jsonable(C.build_card("tiny", workers=2, **kw))
    for c in (one, two):
        c.pop("run")
    assert one == two
    assert one["verdict"][5]["status"] == "N/A"  # tiny has no budget
    # a scenario's card.exempt reasons replace FAIL (and only FAIL) by EXEMPT with the reason
    reasons = {k: f"why not {k}" for k in C.PROPERTIES}
    for plain, ex in zip(one["verdict"], C._verdict(one, reasons)):
        assert ex["status"] == ("EXEMPT" if plain["status"] == "FAIL" else plain["status"])
        assert ex["reason"] == reasons[ex["key"]]
    assert C.render_markdown(one) and "## 7." in C.render_markdown(one)


def test_unknown_scenario_names_the_fix(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check-scenario", "no-such-scenario", "--quick"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'no-such-scenario'" in err and "tiny" in err and ".yaml" in err


def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "card.md"
    afile.write_text("keep me")
    monkeypatch.setattr(C, "build_card", lambda *a, **k: pytest.fail("the card was built"))
    with pytest.raises(SystemExit) as exc:
        main(["check-scenario", "tiny", "--quick", "--out", str(afile)])
    assert exc.value.code == 2 and afile.read_text() == "keep me"
    assert f"--out {afile}: a file is there" in capsys.readouterr().err


def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """A file on the path, or a place without write permission, crashed with a traceback after the whole
    card had been computed (in write_card), and the card was lost."""
    import arena_env.paths as paths

    afile = tmp_path / "afile"
    afile.write_text("keep me")
    monkeypatch.setattr(C, "build_card", lambda *a, **k: pytest.fail("the card was built"))
    with pytest.raises(SystemExit) as exc:
        main(["check-scenario", "tiny", "--quick", "--out", str(afile / "cards" / "tiny")])
    assert exc.value.code == 2 and afile.read_text() == "keep me"
    assert f"--out {afile / 'cards' / 'tiny'}: {afile} is a file" in capsys.readouterr().err

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "TemporaryFile", denied)  # root may write anywhere: simulate the refusal
    with pytest.raises(SystemExit) as exc:
        main(["check-scenario", "tiny", "--quick", "--out", str(tmp_path / "new" / "card")])
    assert exc.value.code == 2
    assert "the outputs cannot be written there (Permission denied); pass a directory" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the check leaves nothing behind


@pytest.mark.parametrize("flag,fix", [("--seeds", "--seeds 2 or more"), ("--train-seeds", "--train-seeds 1 or more"),
                                      ("--workers", "--workers 1 or more")])
def test_bad_counts_name_the_fix(capsys, flag, fix):
    with pytest.raises(SystemExit) as exc:
        main(["check-scenario", "tiny", flag, "0"])
    assert exc.value.code == 2
    assert fix in capsys.readouterr().err


def test_card_exempt_key_is_validated():
    sc = C.load("tiny", card={"exempt": {"adaptive": "stationary test bed by design"}})
    assert sc.card.exempt == {"adaptive": "stationary test bed by design"}
    with pytest.raises(C.ScenarioError, match="card.exempt.nope: unknown property; expected one of levers"):
        C.load("tiny", card={"exempt": {"nope": "x"}})
    with pytest.raises(C.ScenarioError, match="needs the reason"):
        C.load("tiny", card={"exempt": {"budget": " "}})


def _row(ret=0.0, scans=10, retention=0.5, budget=None):
    ci = np.zeros((5, L.N_AI), dtype=np.int64)
    ci[:, L.A_SCANS] = scans
    control = np.zeros(len(METRIC_NAMES))
    control[METRIC_NAMES.index("RETENTION_RATE")] = retention
    return {"return": ret, "control_i": ci, "control_f": np.zeros((5, L.N_AF)), "control": control,
            "treat": control.copy(), "budget": budget, "rewards": np.zeros(5), "steps": 5}


def test_control_and_budget_summaries_are_pure():
    same = C._control_moves([_row(), _row()], [_row(), _row()])
    assert same["bit_identical"] and same["identical_seeds"] == 2 and same["max_rel_diff_scans"] == 0
    moved = C._control_moves([_row(), _row()], [_row(), _row(scans=11, retention=0.55)])
    assert not moved["bit_identical"] and moved["identical_seeds"] == 1
    assert moved["max_rel_diff_scans"] == pytest.approx(0.1) and moved["max_rel_diff_retention"] == pytest.approx(0.1)
    b = np.array([[100.0, 90.0], [100.0, 110.0], [100.0, 104.0], [100.0, np.nan]])  # the NaN day is not counted
    st = C._budget_stats([_row(budget=b)])
    assert st["days"] == 3 and st["days_over_5pct"] == 1 and st["share_over_5pct"] == pytest.approx(1 / 3)


def test_module_entry_point_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "arena_env", "check-scenario", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--train-seeds" in out.stdout and "--quick" in out.stdout


def test_default_workers(monkeypatch, capsys):
    """Without --workers the command picks min(2, cores) workers (this path once called a function that did
    not exist)."""
    import os

    from arena_env.economy import card as C

    seen = {}

    def fake(*a, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(C, "build_card", fake)
    with pytest.raises(SystemExit):
        main(["check-scenario", "tiny", "--quick"])
    assert seen["workers"] == max(1, min(2, os.cpu_count() or 1))
