"""``python evaluate.py --config configs/replay_obd.yaml``: the replay leaderboard on the shipped Open
Bandit Dataset sample, its outputs, its numbers checked independently, and config errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import evaluate
from arena_env.evaluation import replay_board

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "replay_obd.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "run"
    cfg = tmp_path_factory.mktemp("cfg") / "obd.yaml"
    # the shipped config with fewer resamples (and estimators) to keep the test short
    text = CONFIG.read_text().replace("../tests/data", str(ROOT / "tests" / "data"))
    text = text.replace("estimators: [snipw, ipw, dr, dm, replay]", "estimators: [snipw, ipw, replay]")
    text = text.replace("n_bootstrap: 2000", "n_bootstrap: 300")
    cfg.write_text(text)
    assert evaluate.main(["--config", str(cfg), "--out", str(out)]) == 0
    return out


def test_outputs(run):
    for f in ("leaderboard.md", "leaderboard.csv", "report.html", "results.parquet", "traces.parquet", "manifest.json"):
        assert (run / f).is_file(), f
    md = (run / "leaderboard.md").read_text()
    assert md.startswith("# Replay leaderboard") and "| rank | policy |" in md
    html = (run / "report.html").read_text()
    assert '<table id="leaderboard">' in html and "data:image/png;base64," in html
    meta = json.loads((run / "manifest.json").read_text())
    assert meta["kind"] == "replay" and len(meta["log_sha256"]) == 64
    t = pq.read_table(run / "results.parquet")
    assert json.loads(t.schema.metadata[b"arena_manifest"])["log_sha256"] == meta["log_sha256"]
    tr = pq.read_table(run / "traces.parquet")
    assert tr.num_rows == 4 * 2000 and set(tr.column("policy").to_pylist()) == {"random", "bts", "max-affinity",
                                                                                  "item-0"}


def test_numbers_against_the_data(run):
    rows = list(csv.DictReader(open(run / "leaderboard.csv")))
    by = {(r["estimator"], r["policy"]): r for r in rows}
    raw = pcsv.read_csv(ROOT / "tests/data/obd/random/all/all.csv")
    click = np.asarray(raw.column("click"), float)
    item = np.asarray(raw.column("item_id"))
    ps = np.asarray(raw.column("propensity_score"), float)
    # the logging policy's value is its mean click, by every estimator
    for est in ("snipw", "ipw", "replay"):
        assert float(by[(est, "random")]["value"]) == pytest.approx(click.mean(), rel=1e-9)
    # item-0 by IPW: sum of clicks on rows that logged item 0, weighted by 1 / propensity, over n
    assert float(by[("ipw", "item-0")]["value"]) == pytest.approx(np.sum((item == 0) * click / ps) / len(click))
    # the reference: bts's mean click on its own log, with an exact interval
    from scipy.stats import binomtest

    b = pcsv.read_csv(ROOT / "tests/data/obd/bts/all/all.csv")
    bc = np.asarray(b.column("click"), int)
    md = (run / "leaderboard.md").read_text()
    ci = binomtest(int(bc.sum()), len(bc)).proportion_ci(method="exact")
    assert f"{bc.mean():.4f} [{ci.low:.4f}, {ci.high:.4f}] (clopper-pearson)" in md
    rel = float(by[("ipw", "bts")]["relative_error"])
    assert rel == pytest.approx(abs(float(by[("ipw", "bts")]["value"]) - bc.mean()) / bc.mean())
    # the replay estimator's exact interval for a deterministic policy
    assert by[("replay", "item-0")]["interval"] == "clopper-pearson"
    assert float(by[("replay", "item-0")]["high"]) > 0
    # ranks follow the main estimator's values
    main = sorted((r for r in rows if r["estimator"] == "snipw"), key=lambda r: int(r["rank"]))
    vals = [float(r["value"]) for r in main]
    assert vals == sorted(vals, reverse=True)


@pytest.mark.parametrize("patch, pattern", [
    ({"colour": 1}, r"unknown key 'colour'"),
    ({"estimators": ["magic"]}, r"estimators: expected a non-empty list of replay, ipw"),
    ({"baseline": "nobody"}, r"baseline: 'nobody' is not one of the policies"),
    ({"policies": [{"fancy": {}}]}, r"policies\[0\]: unknown policy 'fancy'"),
    ({"replay": {"log": "nope.csv", "format": "obd"}}, r"replay.log: no such file"),
    ({"replay": {"log": "x", "format": "xml"}}, r"replay.format: expected events or obd"),
    ({"n_bootstrap": 0}, r"n_bootstrap: expected an integer >= 1"),
    ({"references": {"ghost": "../tests/data/obd/bts/all/all.csv"}}, r"references.ghost: no policy is named 'ghost'"),
])
def test_config_errors(tmp_path, patch, pattern):
    import yaml

    data = yaml.safe_load(CONFIG.read_text())
    data.update(patch)
    for k in ("log",):
        if isinstance(data["replay"].get(k), str) and data["replay"][k].startswith(".."):
            data["replay"][k] = str((CONFIG.parent / data["replay"][k]).resolve())
    data["references"] = {k: str((CONFIG.parent / v).resolve()) for k, v in (data.get("references") or {}).items()}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(replay_board.ReplayConfigError, match=pattern) as info:
        replay_board.load_config(p)
    assert str(info.value).startswith(str(p))
    assert evaluate.main(["--config", str(p), "--out", str(tmp_path / "o")]) == 2


def test_tournament_flags_are_refused(tmp_path, capsys):
    assert evaluate.main(["--config", str(CONFIG), "--seeds", "3", "--out", str(tmp_path / "o")]) == 2
    assert "--seeds apply to tournaments only" in capsys.readouterr().err


def test_an_empty_log_is_refused_naming_it(tmp_path, capsys):
    """A log with a header and no rows: a clear error naming the file, no run directory, no traceback."""
    src = ROOT / "tests" / "data" / "obd" / "random" / "all" / "all.csv"
    log = tmp_path / "random" / "all" / "all.csv"  # the dataset's layout names the logging policy
    log.parent.mkdir(parents=True)
    log.write_text(src.read_text().splitlines()[0] + "\n")
    cfg = tmp_path / "empty.yaml"
    cfg.write_text(f"replay: {{log: {log}, format: obd}}\nestimators: [snipw, dr]\nbaseline: random\n"
                   "policies: [random, {constant: {action: '0', name: item-0}}]\nn_bootstrap: 50\n")
    out = tmp_path / "o"
    assert evaluate.main(["--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {log}: no decision points to score with snipw (the log has 0 events in 0 cases" in err
    assert "Traceback" not in err and not out.exists()


def _events(tmp_path: Path, n: int = 40, seed: int = 0, alpha: float = 0.05, horizon: bool = True) -> Path:
    """An events log of ``n`` cases (one decision each, actions a/b/c logged with propensities 0.5/0.3/0.2,
    then a y/n outcome), its manifest, and a replay config scoring three policies on it; returns the config."""
    rng = np.random.default_rng(seed)
    prop = {"a": 0.5, "b": 0.3, "c": 0.2}
    lines = ["case_id,event_id,timestamp,event_type,action,propensity,outcome"]
    for i in range(n):
        a = str(rng.choice(list(prop), p=list(prop.values())))
        t = f"2024-01-01T{i // 60:02d}:{i % 60:02d}"
        lines += [f"c{i},d{i},{t}:00Z,decision.executed,{a},{prop[a]},",
                  f"c{i},o{i},{t}:30Z,outcome.recorded,,,{'y' if rng.random() < 0.5 else 'n'}"]
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "manifest.yaml").write_text(
        'name: r\nversion: "1"\ndecision_points: [{name: offer, trigger: decision.executed}]\n'
        'allowed_actions: [a, b, c]\noutcomes: {positive: ["y"], negative: ["n"]' + (", horizon: 7d" if horizon else "")
        + "}\n")
    cfg = tmp_path / "replay.yaml"
    cfg.write_text("replay: {log: events.csv, format: events, manifest: manifest.yaml}\nestimators: [ipw, replay]\n"
                   "baseline: random\npolicies: [random, {constant: {action: c, name: always-c}}, logged]\n"
                   f"n_bootstrap: 200\nalpha: {alpha}\n")
    return cfg


def test_replay_warns_on_varying_propensities_labels_its_level_and_leads_each_tie_group(tmp_path):
    out = tmp_path / "o"
    assert evaluate.main(["--config", str(_events(tmp_path, alpha=0.5)), "--out", str(out)]) == 0
    md = (out / "leaderboard.md").read_text()
    # replay is biased under these propensities (0.5 / 0.3 / 0.2): docs/replay.md says evaluate warns
    assert "- `replay` / `random`: replay is unbiased only under uniformly random logging" in md
    # the level follows alpha, in the table, the intro and the report
    assert "| value [50% CI] |" in md and "vs baseline [50% CI]" in md and "with its 50% interval" in md
    assert "95%" not in md and "95%" not in (out / "report.html").read_text()
    # each rank group starts with its leader, the highest value; tied rows follow it
    rows = list(csv.DictReader(open(out / "leaderboard.csv")))
    table = [line for line in md.split("## Every estimator")[0].splitlines() if line.startswith("| ")][1:]
    shown = [cells.split(" | ")[1].removesuffix(" (baseline)") for cells in table]
    assert shown == ["always-c", "random", "logged"]  # the config lists random first; always-c leads
    by = {r["policy"]: r for r in rows if r["estimator"] == "ipw"}
    for rank in {r["rank"] for r in by.values()}:
        group = [p for p in shown if by[p]["rank"] == rank]
        assert by[group[0]]["tie"] == "False" and all(by[p]["tie"] == "True" for p in group[1:])
        vals = [float(by[p]["value"]) for p in group]
        assert vals == sorted(vals, reverse=True)


def test_a_replay_run_refuses_an_out_that_holds_a_run_or_is_a_file(tmp_path, capsys):
    cfg = _events(tmp_path)
    out = tmp_path / "o"
    assert evaluate.main(["--config", str(cfg), "--out", str(out), "--n-boot", "2000"]) == 0
    assert "(2000 case-clustered bootstrap resamples)" in (out / "leaderboard.md").read_text()  # not the config's 200
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    capsys.readouterr()
    assert evaluate.main(["--config", str(cfg), "--out", str(out)]) == 2
    assert f"error: {out} holds a run already (results.parquet)" in capsys.readouterr().err
    assert evaluate.main(["--seeds", "2", "--out", str(out)]) == 2  # a tournament would overwrite it too
    assert "no tournament cell store (cells.jsonl)" in capsys.readouterr().err
    assert evaluate.main(["--leaderboard-only", "--out", str(out)]) == 2
    assert f"{out} is a replay run: --leaderboard-only re-ranks tournaments" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before  # nothing was touched
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert evaluate.main(["--config", str(cfg), "--out", str(afile)]) == 2
    assert f"--out {afile}: a file is there" in capsys.readouterr().err and afile.read_text() == "keep me"
    assert evaluate.main(["--seeds", "2", "--out", str(afile)]) == 2  # a tournament, likewise
    assert f"--out {afile}: a file is there" in capsys.readouterr().err and afile.read_text() == "keep me"


def test_an_empty_events_log_with_a_horizon_is_refused_naming_it(tmp_path, capsys):
    cfg = _events(tmp_path, horizon=True)
    log = tmp_path / "events.csv"
    log.write_text(log.read_text().splitlines()[0] + "\n")
    assert evaluate.main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"error: {log}: no decision points to score with ipw (the log has 0 events in 0 cases" in err


@pytest.mark.parametrize("policy, pattern", [
    ('{constant: {action: "999"}}', "policies[1]: constant:999: unknown action '999'; the manifest's actions are a, b, c"),
    ('{argmax: {template: "nothere_{action}"}}', "policies[1]: argmax:nothere_{action}: no numeric feature matches"),
])
def test_a_policy_that_cannot_act_on_the_log_is_named_by_file_and_index(tmp_path, capsys, policy, pattern):
    cfg = _events(tmp_path)
    cfg.write_text(cfg.read_text().split("policies:")[0] + f"policies: [random, {policy}]\nn_bootstrap: 50\n")
    assert evaluate.main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert f"error: {cfg}: {pattern}" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_obd_log_outside_the_datasets_layout_takes_its_policy_from_the_config(tmp_path, capsys):
    src = ROOT / "tests" / "data" / "obd" / "random" / "all" / "all.csv"
    log = tmp_path / "clicks.csv"
    log.write_bytes(src.read_bytes())
    cfg = tmp_path / "obd.yaml"
    cfg.write_text(f"replay: {{log: {log}, format: obd}}\nestimators: [snipw]\npolicies: [random]\nn_bootstrap: 50\n")
    assert evaluate.main(["--config", str(cfg), "--out", str(tmp_path / "a")]) == 2
    assert "pass behavior_policy= one of random, bts (replay.behavior_policy in a replay config)" in capsys.readouterr().err
    cfg.write_text(cfg.read_text().replace("format: obd}", "format: obd, behavior_policy: random, campaign: all}"))
    assert evaluate.main(["--config", str(cfg), "--out", str(tmp_path / "b")]) == 0
    assert "| 1 | random (baseline) | 0.0025 [0.0008, 0.0058] | clopper-pearson |" in (tmp_path / "b" / "leaderboard.md").read_text()
