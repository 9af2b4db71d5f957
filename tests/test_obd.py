"""The Open Bandit Dataset importer (arena_env/replay/obd.py) on the shipped sample (tests/data/obd/: the first
2,000 rows of obp 0.5.7's random/all and bts/all files, see its README), and the Thompson-sampling logger.

Facts of the data checked here (and found in the full 10,000-row files of the sdist too):

* random: ``propensity_score`` is exactly 1/80 in every row.
* bts: the logged propensities are the production sampler's probabilities of the logged item at the logged
  position, and they drift as its posterior is updated: in the first hour of the week they are close to
  :func:`bts_action_dist` of obp's starting prior (median |log(ps / mc)| 0.17-0.20 over seeds, rank
  correlation 0.92), a day later far from it (median |log ratio| about 1.1).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from arena_env.replay.log import LogError, load_log
from arena_env.replay.manifest import load_manifest
from arena_env.replay.obd import (BTS_PRIOR, CAMPAIGNS, OBDError, bts_action_dist, main, obd_manifest, read_obd,
                                  write_obd_log)
from arena_env.replay.snapshots import prepare

DATA = Path(__file__).parent / "data" / "obd"
SAMPLES = {"random": DATA / "random" / "all" / "all.csv", "bts": DATA / "bts" / "all" / "all.csv"}
N_ROWS = 2000
N_ITEMS = 80
CLICKS = {"random": 5, "bts": 8}  # clicks in the shipped 2,000-row samples (the full files: 38 and 42 in 10,000)


def read_rows(path: Path) -> dict[str, np.ndarray]:
    """The CSV's columns as NumPy arrays, read with the csv module (independent of the importer's pyarrow)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    cols = {name: [r[j] for r in body] for j, name in enumerate(header)}
    out = {"index": np.array(cols[""], dtype=np.int64),
           "timestamp": np.array([int(dt.datetime.fromisoformat(v).timestamp() * 1_000_000 + 0.5)
                                  for v in cols["timestamp"]], dtype=np.int64)}
    for name in ("item_id", "position", "click"):
        out[name] = np.array(cols[name], dtype=np.int64)
    out["propensity_score"] = np.array(cols["propensity_score"], dtype=np.float64)
    for j in range(4):
        out[f"user_feature_{j}"] = np.array(cols[f"user_feature_{j}"], dtype=object)
    for k in range(N_ITEMS):
        out[f"affinity_{k}"] = np.array(cols[f"user-item_affinity_{k}"], dtype=np.float64)
    return out


@pytest.fixture(scope="module")
def rows():
    return {p: read_rows(path) for p, path in SAMPLES.items()}


@pytest.fixture(scope="module")
def replays():
    out = {}
    for policy, path in SAMPLES.items():
        table, manifest = read_obd(path)
        out[policy] = prepare(load_log(table, manifest))
    return out


# ------------------------------------------------------------------------------------------------
# the round trip
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["random", "bts"])
def test_events_follow_the_spec(policy, rows):
    table, manifest = read_obd(SAMPLES[policy])
    r = rows[policy]
    n = N_ROWS
    assert table.num_rows == 2 * n
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    t = {c: table.column(c).to_pylist() for c in ("case_id", "event_id", "seq", "event_type", "action", "outcome",
                                                   "propensity", "position", "behavior_policy")}
    assert t["case_id"][0::2] == t["case_id"][1::2] == [f"{policy}/all/{i}" for i in r["index"]]
    assert len(set(t["event_id"])) == 2 * n
    assert t["seq"] == [0, 1] * n
    assert t["event_type"] == ["decision.executed", "outcome.recorded"] * n
    np.testing.assert_array_equal(table.column("timestamp").cast(pa.int64()).to_numpy()[0::2], r["timestamp"])
    np.testing.assert_array_equal(table.column("timestamp").cast(pa.int64()).to_numpy()[1::2], r["timestamp"])
    # the decision carries the action, propensity and attributes; the outcome only the click
    assert t["action"][0::2] == [str(i) for i in r["item_id"]] and set(t["action"][1::2]) == {None}
    assert t["propensity"][0::2] == r["propensity_score"].tolist() and set(t["propensity"][1::2]) == {None}
    assert t["position"][0::2] == (r["position"] - 1).tolist() and set(t["position"][1::2]) == {None}
    assert set(t["behavior_policy"][0::2]) == {policy} and set(t["behavior_policy"][1::2]) == {None}
    assert t["outcome"][1::2] == ["click" if c else "no_click" for c in r["click"]]
    assert set(t["outcome"][0::2]) == {None}
    assert table.column("affinity_79").to_pylist()[0::2] == r["affinity_79"].tolist()
    assert not [c for c in table.column_names if "user-item" in c or c in ("click", "item_id", "propensity_score")]
    assert manifest["name"] == f"obd_{policy}_all"
    assert manifest["allowed_actions"] == [str(i) for i in range(N_ITEMS)]
    assert manifest["labels"] == []


@pytest.mark.parametrize("policy", ["random", "bts"])
def test_replay_matches_the_csv_row_by_row(policy, rows, replays):
    rep, r = replays[policy], rows[policy]
    assert len(rep) == N_ROWS and rep.first.all()
    # which CSV row each decision row came from (the files are in time order, so row k is CSV row k)
    src = np.array([int(rep.log.case_ids[c].rsplit("/", 1)[1]) for c in rep.case])
    np.testing.assert_array_equal(src, r["index"])
    np.testing.assert_array_equal(rep.logged, r["item_id"])
    np.testing.assert_array_equal(rep.pscore, r["propensity_score"])
    np.testing.assert_array_equal(rep.reward, r["click"].astype(np.float64))
    np.testing.assert_array_equal(rep.position, r["position"] - 1)
    np.testing.assert_array_equal(rep.time_us, r["timestamp"])
    np.testing.assert_array_equal(rep.outcome_time_us, r["timestamp"])  # the click is recorded at the decision
    np.testing.assert_array_equal(rep.features["user_feature_2"], r["user_feature_2"])
    np.testing.assert_array_equal(rep.features["affinity_0"], r["affinity_0"])
    assert "outcome" not in rep.features and "click" not in rep.features and "behavior_policy" not in rep.features
    assert rep.allowed.all()


@pytest.mark.parametrize("policy", ["random", "bts"])
def test_on_policy_value_is_the_mean_click(policy, rows, replays):
    """The behaviour policy's own value: 5/2000 = 0.0025 (random), 8/2000 = 0.004 (bts) on the samples."""
    assert rows[policy]["click"].sum() == CLICKS[policy]
    assert replays[policy].reward.mean() == pytest.approx(CLICKS[policy] / N_ROWS, abs=1e-15)


def test_source_may_be_the_campaign_directory_or_the_dataset_root():
    by_file, m1 = read_obd(SAMPLES["bts"])
    by_dir, m2 = read_obd(DATA / "bts" / "all")
    by_root, m3 = read_obd(DATA, behavior_policy="bts", campaign="all")
    assert by_file.equals(by_dir) and by_file.equals(by_root) and m1 == m2 == m3 == obd_manifest("bts", "all")


def test_write_obd_log_and_the_command_line_round_trip(tmp_path, replays):
    events, man = write_obd_log(SAMPLES["bts"], tmp_path / "api")
    assert (events.name, man.name) == ("events.parquet", "manifest.yaml")
    assert main([str(SAMPLES["random"]), str(tmp_path / "cli")]) == 0
    for policy, out in (("bts", tmp_path / "api"), ("random", tmp_path / "cli")):
        manifest = load_manifest(out / "manifest.yaml")
        assert manifest.name == f"obd_{policy}_all" and manifest.allowed_actions[:2] == ("0", "1")
        rep = prepare(load_log(out / "events.parquet", manifest))
        ref = replays[policy]
        for name in ("logged", "pscore", "reward", "position", "time_us"):
            np.testing.assert_array_equal(getattr(rep, name), getattr(ref, name), err_msg=name)


def test_the_command_line_refuses_an_out_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "out"
    afile.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        main([str(SAMPLES["random"]), str(afile)])
    assert exc.value.code == 2 and afile.read_text() == "keep me"
    assert f"error: OUT {afile}: a file is there" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# propensities
# ------------------------------------------------------------------------------------------------

def test_random_logger_propensity_is_one_over_the_number_of_items(rows):
    """Three distinct items drawn uniformly: each item is at a given position with probability 1/80."""
    assert (rows["random"]["propensity_score"] == 1 / N_ITEMS).all()


def test_bts_propensities_give_mean_importance_weight_about_one(rows):
    """If ``propensity_score`` is pi_b(item at position), the uniform policy's weights 1/(80 ps) have mean 1 at each
    position.  Observed on the sample: 1.09, 1.06, 0.78 (standard errors 0.22, 0.22, 0.08; the weights are heavy-
    tailed, up to 132, so their sample mean tends to fall short of 1).  The band [0.5, 1.5] keeps that and fails
    for the conventions one could confuse it with: the probability of the item anywhere in the list (weights /3)
    or of the whole list (weights x thousands)."""
    r = rows["bts"]
    w = 1 / (N_ITEMS * r["propensity_score"])
    pos = r["position"] - 1
    means = [w[pos == p].mean() for p in range(3)]
    assert all(0.5 < m < 1.5 for m in means), means


def _spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_bts_prior_predicts_the_first_hour_and_the_log_drifts_away_from_it(rows):
    """bts_action_dist of obp's starting prior against the logged propensities (see the module docstring).

    First hour (71 rows): median |log(ps / mc)| is 0.17-0.20 over seeds 0-4, Spearman 0.92.  Tolerances 0.3 and
    0.85: the Monte Carlo error is small at n_sim=100,000 (relative standard error < 0.05 for p >= 0.005), and the
    bound fails for the nearest wrong answers (positions reversed: 0.35, rank correlation 0.86; uniform: 1.22).
    After a day (483 rows) the production posterior has moved: median |log ratio| about 1.1, above 0.7.
    """
    r = rows["bts"]
    mc = bts_action_dist("all", N_ITEMS, n_sim=100_000, seed=0)
    pred = np.maximum(mc[r["item_id"], r["position"] - 1], 1 / 100_000)
    ps = r["propensity_score"]
    hours = (r["timestamp"] - r["timestamp"][0]) / 3.6e9
    first, late = hours < 1, hours >= 24
    assert first.sum() == 71 and late.sum() == 483
    log_ratio = np.abs(np.log(ps / pred))
    assert np.median(log_ratio[first]) < 0.3
    assert _spearman(ps[first], pred[first]) > 0.85
    assert np.median(log_ratio[late]) > 0.7
    reversed_ = np.maximum(mc[r["item_id"], 3 - r["position"]], 1 / 100_000)
    assert np.median(np.abs(np.log(ps / reversed_))[first]) > 0.3  # the test tells the positions apart


# ------------------------------------------------------------------------------------------------
# bts_action_dist
# ------------------------------------------------------------------------------------------------

def _obp_loop(campaign: str, len_list: int, n_sim: int, seed: int) -> np.ndarray:
    """obp's BernoulliTS.compute_batch_action_dist, one draw at a time (the slow, obvious twin)."""
    alpha = np.asarray(BTS_PRIOR[campaign]["alpha"], dtype=np.float64)
    beta = np.asarray(BTS_PRIOR[campaign]["beta"], dtype=np.float64)
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(alpha), len_list))
    zeros = np.zeros(len(alpha))
    for _ in range(n_sim):
        predicted_rewards = rng.beta(a=zeros + alpha, b=(zeros - zeros) + beta)
        selected = predicted_rewards.argsort()[::-1][:len_list]
        for pos in range(len_list):
            counts[selected[pos], pos] += 1
    return counts / n_sim


@pytest.mark.parametrize("campaign,len_list,n_sim", [("men", 3, 23_456), ("women", 2, 3_000), ("all", 1, 1)])
def test_bts_action_dist_equals_obps_loop(campaign, len_list, n_sim):
    """Exactly equal (the same draws), also across the blocks of 10,000 draws the fast version uses."""
    fast = bts_action_dist(campaign, CAMPAIGNS[campaign], len_list=len_list, n_sim=n_sim, seed=7)
    np.testing.assert_array_equal(fast, _obp_loop(campaign, len_list, n_sim, seed=7))


@pytest.mark.parametrize("campaign", list(CAMPAIGNS))
def test_bts_action_dist_is_a_distribution_per_position_and_seeded(campaign):
    k = CAMPAIGNS[campaign]
    d = bts_action_dist(campaign, k, n_sim=20_000, seed=3)
    assert d.shape == (k, 3) and d.dtype == np.float64
    np.testing.assert_allclose(d.sum(axis=0), 1.0, rtol=0, atol=1e-12)
    assert (d >= 0).all() and (d.sum(axis=1) <= 1 + 1e-12).all()  # an item fills at most one position per round
    np.testing.assert_array_equal(d, bts_action_dist(campaign, k, n_sim=20_000, seed=3))
    assert not np.array_equal(d, bts_action_dist(campaign, k, n_sim=20_000, seed=4))


def test_bts_prior_is_obps_file():
    with open(DATA / "prior_bts.yaml") as fh:
        original = yaml.safe_load(fh)
    assert set(original) == set(BTS_PRIOR) == set(CAMPAIGNS)
    for campaign, prior in original.items():
        for key in ("alpha", "beta"):
            assert [float(v) for v in BTS_PRIOR[campaign][key]] == prior[key]
        assert len(prior["alpha"]) == CAMPAIGNS[campaign]


def test_bts_action_dist_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_items=34, but campaign 'all' has 80 items"):
        bts_action_dist("all", 34)
    with pytest.raises(ValueError, match="unknown campaign 'kids'"):
        bts_action_dist("kids", 10)
    with pytest.raises(ValueError, match="len_list=0"):
        bts_action_dist("men", 34, len_list=0)
    with pytest.raises(ValueError, match="n_sim=0"):
        bts_action_dist("men", 34, n_sim=0)


# ------------------------------------------------------------------------------------------------
# malformed input
# ------------------------------------------------------------------------------------------------

def _derived(tmp_path: Path, edit=None, n: int = 5, policy: str = "bts", campaign: str = "all") -> Path:
    """The sample's header and first ``n`` rows, ``edit(header, rows)`` applied, at <tmp>/<policy>/<campaign>/."""
    with open(SAMPLES["bts"], newline="") as fh:
        lines = list(csv.reader(fh))[: n + 1]
    header, body = lines[0], lines[1:]
    if edit is not None:
        header, body = edit(header, body)
    out = tmp_path / policy / campaign / f"{campaign}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    return out


def _drop(name):
    def edit(header, body):
        j = header.index(name)
        return header[:j] + header[j + 1:], [r[:j] + r[j + 1:] for r in body]
    return edit


def _set(row, name, value):
    def edit(header, body):
        body[row][header.index(name)] = value
        return header, body
    return edit


@pytest.mark.parametrize("column", ["click", "propensity_score", "user_feature_3", "user-item_affinity_5"])
def test_a_missing_column_is_named_with_the_file(tmp_path, column):
    path = _derived(tmp_path, _drop(column))
    with pytest.raises(OBDError, match=f"{path}: missing column '{column}'"):
        read_obd(path)


@pytest.mark.parametrize("column,value,message", [
    ("position", "4", r"row 3 \(line 4\): column 'position': 4 is not a position \(1 .. 3\)"),
    ("item_id", "80", r"row 3 \(line 4\): column 'item_id': 80 is not an item id of the campaign \(0 .. 79\)"),
    ("click", "2", r"row 3 \(line 4\): column 'click': 2 is not 0 or 1"),
    ("propensity_score", "0.0", r"row 3 \(line 4\): column 'propensity_score': 0.0 is outside \(0, 1\]"),
    ("item_id", "seven", r"row 3 \(line 4\): column 'item_id': 'seven' is not a whole number"),
    ("user-item_affinity_9", "high", r"row 3 \(line 4\): column 'user-item_affinity_9': 'high' is not a number"),
    ("click", "", r"row 3 \(line 4\): column 'click' is empty"),
    ("user-item_affinity_3", "inf", r"row 3 \(line 4\): column 'user-item_affinity_3': inf is not a finite number"),
    ("user_feature_1", "", r"row 3 \(line 4\): column 'user_feature_1' is empty"),
    ("timestamp", "yesterday", r"row 3 \(line 4\): column 'timestamp': cannot read 'yesterday'"),
    ("timestamp", "2019-13-01 00:00:00+00:00", r"row 3 \(line 4\): column 'timestamp': cannot read '2019-13-01"),
    ("timestamp", "2019-11-24 00:01:00", r"row 3 \(line 4\): column 'timestamp': '2019-11-24 00:01:00' has no UTC"),
    ("", "0", r"row 3 \(line 4\): column '': 0 \(the row index\) is repeated"),
])
def test_a_bad_value_is_named_with_file_row_line_and_column(tmp_path, column, value, message):
    path = _derived(tmp_path, _set(2, column, value))
    with pytest.raises(OBDError, match=f"{path}: {message}"):
        read_obd(path)


def test_other_malformed_files(tmp_path):
    extra = _derived(tmp_path / "a", lambda h, b: (h + ["score"], [r + ["1"] for r in b]))
    with pytest.raises(OBDError, match=f"{extra}: unexpected column 'score'"):
        read_obd(extra)
    men = _derived(tmp_path / "b", campaign="men")  # 80 affinity columns in a men directory
    with pytest.raises(OBDError, match="80 columns user-item_affinity_<k>, but campaign 'men' has 34 items.*'all'"):
        read_obd(men)
    loose = tmp_path / "c" / "sample.csv"
    loose.parent.mkdir()
    loose.write_bytes(_derived(tmp_path / "d").read_bytes())
    with pytest.raises(OBDError, match="cannot tell the behavior_policy from the path.*random, bts"):
        read_obd(loose)
    table, manifest = read_obd(loose, behavior_policy="bts", campaign="all")
    assert table.column("case_id")[0].as_py() == "bts/all/0" and manifest["name"] == "obd_bts_all"
    with pytest.raises(OBDError, match="the path says behavior_policy 'bts' but behavior_policy='random'"):
        read_obd(SAMPLES["bts"], behavior_policy="random")
    with pytest.raises(OBDError, match="unknown campaign 'kids'"):
        read_obd(loose, behavior_policy="bts", campaign="kids")
    with pytest.raises(OBDError, match="no such file"):
        read_obd(tmp_path / "nope.csv")
    assert issubclass(OBDError, LogError)


def test_naive_timestamps_are_read_as_utc_and_the_index_is_optional(tmp_path):
    def edit(header, body):
        t = header.index("timestamp")
        body = [[v.removesuffix("+00:00") if j == t else v for j, v in enumerate(r)][1:] for r in body]
        return header[1:], body
    table, _ = read_obd(_derived(tmp_path, edit))
    ref, _ = read_obd(_derived(tmp_path / "ref"))
    assert table.column("timestamp").equals(ref.column("timestamp"))
    assert table.column("case_id").to_pylist()[::2] == [f"bts/all/{i}" for i in range(5)]


def test_bts_policy_is_the_prior_sampler_at_each_rows_position():
    from arena_env.replay import obd
    from arena_env.replay.log import load_log
    from arena_env.replay.snapshots import prepare

    table, man = obd.read_obd(DATA / "random" / "all" / "all.csv")
    rep = prepare(load_log(table, man))
    pol = obd.BTSPolicy("all", n_sim=20_000, seed=3)
    dist = pol.action_dist(rep)
    table_ = obd.bts_action_dist("all", 80, n_sim=20_000, seed=3)
    order = [int(a) for a in rep.actions]
    for i in (0, 5, 1999):
        np.testing.assert_array_equal(dist[i], table_[order, rep.position[i]])
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="unknown campaign 'kids'"):
        obd.BTSPolicy("kids")
