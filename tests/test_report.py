"""report.html: self-contained, with every table and the plots; opened in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from arena_env.evaluation import leaderboard, report, tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Both tracks on two scenarios: three solo tables (all, tiny, gaming-prone) with the oracle-static
    reference row, three head-to-head tables and the win matrix; plots: the solo scores, three per
    scenario, the ratings and the win matrix."""
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
    for tid in ("leaderboard", "leaderboard-tiny", "leaderboard-gaming-prone"):
        body = _table(text, tid)
        assert body.count("<tr>") == 5, tid  # header + 3 agents + the oracle-static reference row
        for agent in ("hold", "random", "ucb1", "oracle-static (reference)"):
            assert f"<td>{agent}" in body, (tid, agent)
        assert "<th>P(&gt;oracle-static)</th>" in body and "<th>seed wins vs hold</th>" in body, tid
    for tid in ("head-to-head", "head-to-head-tiny", "head-to-head-gaming-prone"):
        body = _table(text, tid)
        assert body.count("<tr>") == 4, tid  # header + 3 agents: reference rows are solo only
        for agent in ("hold", "random", "ucb1"):
            assert f"<td>{agent}" in body, (tid, agent)
        assert "oracle-static" not in body, tid
    # the unit and the tie rule are explained above the tables
    assert "0 = <code>hold</code>" in text and "1 = <code>oracle-static</code>" in text
    assert "Unit per scenario (raw mean return): gaming-prone: hold" in text
    assert "ties do not chain" in text
    assert _table(text, "win-matrix").count("<tr>") == 4
    imgs = re.findall(r'<img alt="([^"]*)" src="([^"]+)"', text)
    assert len(imgs) == 1 + 3 * 2 + 2 and all(src.startswith("data:image/png;base64,") for _, src in imgs)
    alts = " ".join(alt for alt, _ in imgs)
    assert "lift over time" in alts and alts.count("metric trajectories per variant") == 2 and "win matrix" in alts
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing loaded from elsewhere


def test_every_plot_is_a_decodable_png(page):
    import base64
    import io

    import matplotlib.image as mpimg

    for alt, src in re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page.read_text()):
        img = mpimg.imread(io.BytesIO(base64.b64decode(src)), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01, alt  # a real, non-blank picture


def chromium(path, profile):
    """The DOM of ``path`` after loading in headless Chromium, and the page's console messages."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):  # CI must run it, not skip
            pytest.fail("CI is set but neither chromium nor chromium-browser is on PATH: .ci/run installs Debian's "
                        "chromium (apt-get install chromium); the report's browser test must run in CI")
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium; in CI, with CI set, "
                    "this test fails instead)")
    res = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", "--dump-dom",
                          path.as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, [line for line in res.stderr.splitlines() if ":CONSOLE" in line]


def test_report_opens_in_headless_chromium_without_errors(page, tmp_path):
    bad = tmp_path / "bad.html"  # the console check catches a page error
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = chromium(bad, tmp_path / "profile-bad")
    assert any("undefinedFunction" in line for line in console), console
    dom, console = chromium(page, tmp_path / "profile")
    assert console == []
    assert _table(dom, "leaderboard").count("<tr>") == 5 and "ucb1" in dom and "oracle-static" in dom
    assert _table(dom, "head-to-head").count("<tr>") == 4
    assert dom.count("<img") == 9


@pytest.fixture(scope="module")
def solo_figures(tmp_path_factory):
    """The solo plots of a small run as matplotlib figures (captured before they become PNGs), with the
    leaderboard they were drawn from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tmp_path_factory.mktemp("figs")
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("random", "random", baseline=True),
                            AgentSpec("oracle-like-long-label", "ucb1", {"period": 2})), ("tiny",), 2,
                           overrides={"max_days": 8, "n_users": 300}, oracle=False)
    rows = tournament.run(cfg, out, workers=1)
    lb = leaderboard.build(rows, n_boot=50)
    figs = []
    mp = pytest.MonkeyPatch()
    mp.setattr(report, "_png", lambda fig: figs.append(fig) or "")
    try:
        titles = [t for t, _ in report._solo_plots(plt, lb, rows)]
    finally:
        mp.undo()
    return dict(zip(titles, figs)), lb


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_plot_legends_hide_no_data_and_panels_do_not_overlap(solo_figures):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figs, _ = solo_figures
    assert len(figs) == 4
    for title, fig in figs.items():
        r = FigureCanvasAgg(fig).get_renderer()  # the figure is closed: draw it on a canvas of its own
        fig.draw(r)
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
        areas = [ax.get_window_extent(r) for ax in fig.axes]
        for leg in legends:
            box = leg.get_window_extent(r)
            assert not any(_overlap(box, a) for a in areas), f"{title}: the legend lies over a plotting area"
        if "scores and lifts" in title:
            left, right = fig.axes
            assert not _overlap(right.get_tightbbox(r), left.get_window_extent(r)), \
                f"{title}: the right panel's agent names run into the left panel"


def test_score_and_lift_panels_list_agents_in_the_table_order(solo_figures):
    figs, lb = solo_figures
    fig = next(f for t, f in figs.items() if "scores and lifts" in t)
    order = [r["agent"] for r in lb.table]
    for ax in fig.axes:
        ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
        assert [name for _, name in ticks] == order  # top to bottom, as in the table and the interval plot
