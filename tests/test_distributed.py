"""Ray: ``evaluate.py --backend ray`` gives the local backend's results (faults and resume included) on a
local Ray and on a running cluster joined by address; Ray's files stay in the run directory; the decision
timeout works off the main thread (Ray actors with concurrency, thread pools)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from arena_env.evaluation import tournament
from arena_env.wrappers.agents import DecisionTimeout, call_with_timeout

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
SMALL = """
scenarios: [tiny]
seeds: {seeds}
track: [solo, head-to-head]
overrides: {{max_days: 8}}
decision_timeout_s: 0.3
agents:
  - {{agent: hold, baseline: true}}
  - {{agent: ucb1, params: {{period: 2}}}}
  - {{agent: "tests.contestants:Crasher", label: crash}}
  - {{agent: "tests.contestants:Spinner", label: spin}}
"""


def strip(rows):
    """The rows without timings (measurements), as JSON: NaN scores of failed rows compare equal."""
    return json.dumps([{k: v for k, v in r.items() if "latency" not in k} for r in rows], sort_keys=True)


def evaluate(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "evaluate.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def clean_env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "HOME": str(home), **extra}


def test_ray_backend_resumes_a_local_run_and_gives_the_same_results(tmp_path):
    cfg2 = tmp_path / "two.yaml"
    cfg2.write_text(SMALL.format(seeds=2))
    cfg1 = tmp_path / "one.yaml"
    cfg1.write_text(SMALL.format(seeds=1))
    local = tournament.run(tournament.load_config(cfg2), tmp_path / "local", workers=1)
    # a store with seed 0 played locally, finished on Ray: only seed 1's cells run there
    tournament.run(tournament.load_config(cfg1), tmp_path / "mixed", workers=1)
    first = (tmp_path / "mixed" / "cells.jsonl").read_text().splitlines()
    home = tmp_path / "home"
    home.mkdir()
    res = evaluate("--config", cfg2, "--out", tmp_path / "mixed", "--resume", "--backend", "ray", "--workers", "2",
                   "--n-boot", "100", env=clean_env(home))
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (tmp_path / "mixed" / "cells.jsonl").read_text().splitlines()
    assert lines[:len(first)] == first and len(lines) == 2 * len(first)  # nothing played twice
    rows, _ = tournament.read_results(tmp_path / "mixed" / "results.parquet")
    want, _ = tournament.read_results(tmp_path / "local" / "results.parquet")
    assert strip(rows) == strip(want) and len(rows) == len(local)
    by = {(r["agent"], r["seed"], r["track"]): r for r in rows}
    crash, spin = by["crash", 1_000_001, "solo"], by["spin", 1_000_001, "solo"]  # played on Ray
    assert crash["failed"] and "RuntimeError: boom" in crash["error"] and np.isnan(crash["score"])
    assert spin["failed"] and "decision timeout of 0.3 s" in spin["error"]
    assert not by["ucb1", 1_000_001, "solo"]["failed"]
    # Ray's session (its logs) is in the run directory, nothing in the home folder or left in the temp dir
    sessions = list((tmp_path / "mixed" / "ray").glob("session_*"))
    assert sessions and (sessions[0] / "logs").is_dir()
    assert not (home / ".ray").exists() and not (home / "ray_results").exists()  # (matplotlib caches fonts there)
    assert "| rank | agent |" in res.stdout


def test_ray_needs_its_backend_and_a_reachable_cluster(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(SMALL.format(seeds=1))
    res = evaluate("--config", cfg, "--out", tmp_path / "a", "--ray-address", "auto")
    assert res.returncode == 2 and "--ray-address needs --backend ray" in res.stderr
    with pytest.raises(tournament.TournamentConfigError, match="unknown backend 'spark'; the backends are local, ray"):
        tournament.run(tournament.load_config(cfg), tmp_path / "b", backend="spark")
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    res = evaluate("--config", cfg, "--out", tmp_path / "c", "--backend", "ray", "--ray-address",
                   f"127.0.0.1:{port}", env=clean_env(tmp_path), timeout=180)
    assert time.monotonic() - t0 < 60  # refused at once, not after Ray's minutes of retries
    assert res.returncode == 2 and f"cannot join the Ray cluster at '127.0.0.1:{port}'" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "c").exists()  # refused before the oracle search and the store: the same command reruns
    assert "static oracle" not in res.stderr


def test_a_cluster_that_refuses_the_job_leaves_no_empty_store(tmp_path, monkeypatch):
    """Something listens at the address but Ray cannot join it (another service, a cluster of another
    version): the error leaves no empty cells.jsonl, so the corrected command may use the same --out."""
    import contextlib

    from arena_env import distributed

    @contextlib.contextmanager
    def refused(*args, **kwargs):
        raise distributed.RayUnavailable("cannot join the Ray cluster at '10.0.0.5:6379': Failed to connect")
        yield

    monkeypatch.setattr(distributed, "check_ray", lambda address=None: None)  # the port answers
    monkeypatch.setattr(distributed, "ray_session", refused)
    path = tmp_path / "t.yaml"
    path.write_text("scenarios: [tiny]\nseeds: 1\ntrack: [solo]\noracle: false\noverrides: {max_days: 3}\n"
                    "agents:\n  - {agent: hold, baseline: true}\n")
    cfg = tournament.load_config(path)
    for out in (tmp_path / "new", tmp_path / "made"):
        if out.name == "made":
            out.mkdir()  # a directory the user made: it stays
        with pytest.raises(distributed.RayUnavailable, match="cannot join"):
            tournament.run(cfg, out, backend="ray", address="10.0.0.5:6379")
        assert not (out / "cells.jsonl").exists()
        assert out.is_dir() == (out.name == "made")
        rows = tournament.run(cfg, out, workers=1)  # the same --out, no --resume needed
        assert rows and not any(r["failed"] for r in rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_running_cluster_joined_by_address_gives_the_same_results(tmp_path):
    """``ray start --head`` (a cluster of one node, started in another directory), then ``evaluate.py
    --ray-address``, with agents of a module of the checkout: the checkout travels with the job."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text(SMALL.format(seeds=2).replace('  - {agent: "tests.contestants:Spinner", label: spin}\n', ""))
    tournament.run(tournament.load_config(cfg), tmp_path / "local", workers=1)
    want, _ = tournament.read_results(tmp_path / "local" / "results.parquet")
    port = _free_port()
    env = clean_env(tmp_path / "home", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    (tmp_path / "home").mkdir()
    temp = Path(os.environ.get("TMPDIR", "/tmp")) / f"arena-rt-{os.getpid()}"  # Ray's sockets need a short path
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port",
                             str(port), "--num-cpus", "2", "--temp-dir", str(temp), "--include-dashboard", "false",
                             "--disable-usage-stats"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # the head listens once it is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.3)
        res = evaluate("--config", cfg, "--out", tmp_path / "cluster", "--backend", "ray", "--ray-address",
                       f"127.0.0.1:{port}", "--n-boot", "100", env=env)
        assert res.returncode == 0, res.stderr[-3000:]
        rows, _ = tournament.read_results(tmp_path / "cluster" / "results.parquet")
        assert strip(rows) == strip(want)
        assert not (tmp_path / "cluster" / "ray").exists()  # the cluster's files are the cluster's
    finally:
        with _suppress():
            os.killpg(head.pid, signal.SIGTERM)  # stops the head's processes
        try:
            head.wait(15)
        except subprocess.TimeoutExpired:
            with _suppress():
                os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


def _suppress():
    import contextlib

    return contextlib.suppress(ProcessLookupError, PermissionError)


# ------------------------------------------------------------------------------ the decision timeout off the main thread
def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return "done"


def test_the_decision_timeout_works_on_any_thread():
    out = {}

    def body():
        t0 = time.perf_counter()
        with pytest.raises(DecisionTimeout, match="slow exceeded the decision timeout of 0.2 s"):
            call_with_timeout(lambda: _spin(5), 0.2, "slow")
        out["slow"] = time.perf_counter() - t0

        def swallow():  # an agent that catches everything still loses the decision
            try:
                _spin(5)
            except BaseException:
                pass
            return "late"

        with pytest.raises(DecisionTimeout):
            call_with_timeout(swallow, 0.2, "swallow")
        out["fast"] = call_with_timeout(lambda: _spin(0.01), 1.0, "fast")
        time.sleep(0.4)  # no stray exception arrives after a call that finished in time
        out["after"] = True

    errors = []

    def run():
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    th = threading.Thread(target=run)
    th.start()
    th.join(30)
    assert not errors, errors
    assert out["fast"] == "done" and out["after"] and 0.2 <= out["slow"] < 1.5


def test_the_decision_timeout_works_in_a_threaded_ray_actor(tmp_path):
    from arena_env.distributed import ray_session

    with ray_session(num_cpus=1, run_dir=tmp_path) as r:
        @r.remote(max_concurrency=2)  # its methods run on a thread pool, where SIGALRM cannot be used
        class Host:
            def decide(self, seconds, timeout):
                try:
                    return call_with_timeout(lambda: _spin(seconds), timeout, "agent"), threading.current_thread() \
                        is threading.main_thread()
                except DecisionTimeout as exc:
                    return str(exc), threading.current_thread() is threading.main_thread()

        host = Host.remote()
        slow, fast = r.get([host.decide.remote(5, 0.2), host.decide.remote(0.01, 2.0)], timeout=60)
    assert slow == ("agent exceeded the decision timeout of 0.2 s", False)
    assert fast == ("done", False)


def test_ray_files_go_to_the_run_directory_when_the_path_is_short_enough(tmp_path):
    from arena_env.distributed import _temp_dir

    short = Path("/tmp") / f"r{os.getpid()}"
    try:
        d, ours = _temp_dir(short)
        assert d == short.resolve() / "ray" and not ours and d.is_dir()
    finally:
        import shutil

        shutil.rmtree(short, ignore_errors=True)
    long = tmp_path / ("x" * 60)
    d, ours = _temp_dir(long)
    assert ours and len(str(d)) < 40 and not str(d).startswith(str(long))
    d.rmdir()
