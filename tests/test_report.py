"""report.html: self-contained, with the leaderboard table and the plots; opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from arena_env.evaluation import leaderboard, report, tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("random", "random", baseline=True),
                            AgentSpec("ucb1", "ucb1", {"period": 2})), ("tiny",), 3, overrides={"max_days": 10})
    rows = tournament.run(cfg, out, workers=1)
    table, facts = leaderboard.build(rows, n_boot=100)
    return report.write(table, rows, facts, tournament.manifest(cfg), out)


def test_report_is_self_contained_with_table_and_plots(page):
    text = page.read_text()
    assert '<table id="leaderboard">' in text and text.count("<tr>") == 4  # header + 3 agents
    for agent in ("hold", "random", "ucb1"):
        assert f"<td>{agent}" in text
    imgs = re.findall(r'<img alt="[^"]*" src="([^"]+)"', text)
    assert len(imgs) == 3 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "lift over time" in text
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
    assert '<table id="leaderboard">' in dom and dom.count("<tr>") == 4 and "ucb1" in dom
    assert dom.count("<img") == 3
