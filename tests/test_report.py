"""report.html: self-contained, with every table and the plots; opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from arena_env.evaluation import leaderboard, report, tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Both tracks on two scenarios: three solo tables (all, tiny, gaming-prone), three head-to-head tables
    and the win matrix; plots: the solo scores, three per scenario, the ratings and the win matrix."""
    out = tmp_path_factory.mktemp("run")
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("random", "random", baseline=True),
                            AgentSpec("ucb1", "ucb1", {"period": 2})), ("tiny", "gaming-prone"), 3,
                           tracks=("solo", "head-to-head"), overrides={"max_days": 10, "n_users": 600})
    rows = tournament.run(cfg, out, workers=1)
    return report.write(leaderboard.build(rows, n_boot=100), rows, tournament.manifest(cfg), out)


def _table(text, table_id):
    m = re.search(rf'<table id="{table_id}">(.*?)</table>', text, re.S)
    assert m, f"no table {table_id}"
    return m.group(1)


def test_report_is_self_contained_with_every_table_and_plot(page):
    text = page.read_text()
    for tid in ("leaderboard", "leaderboard-tiny", "leaderboard-gaming-prone", "head-to-head", "head-to-head-tiny",
                "head-to-head-gaming-prone"):
        body = _table(text, tid)
        assert body.count("<tr>") == 4, tid  # header + 3 agents
        for agent in ("hold", "random", "ucb1"):
            assert f"<td>{agent}" in body, (tid, agent)
    assert _table(text, "win-matrix").count("<tr>") == 4
    imgs = re.findall(r'<img alt="([^"]*)" src="([^"]+)"', text)
    assert len(imgs) == 1 + 3 * 2 + 2 and all(src.startswith("data:image/png;base64,") for _, src in imgs)
    alts = " ".join(alt for alt, _ in imgs)
    assert "lift over time" in alts and alts.count("metric trajectories per variant") == 2 and "win matrix" in alts
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing loaded from elsewhere


def test_report_opens_in_headless_chromium(page, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    res = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = res.stdout
    assert res.returncode == 0, res.stderr[-2000:]
    assert _table(dom, "leaderboard").count("<tr>") == 4 and "ucb1" in dom
    assert _table(dom, "head-to-head").count("<tr>") == 4
    assert dom.count("<img") == 9
