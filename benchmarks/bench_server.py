#!/usr/bin/env python
"""Server load: concurrent agents polling and acting against a real ``python -m arena_env serve`` process.

Run from the checkout::

    .venv/bin/python benchmarks/bench_server.py              # 50 agents, 60 s on the wall clock + 20 s runs
                                                             # of the manual clock and of signals-only polling
    .venv/bin/python benchmarks/bench_server.py --quick      # 50 agents, one 8-second wall-clock run
    .venv/bin/python benchmarks/bench_server.py --profile    # also a cProfile of the server (all its threads)

**Server.**  A fresh experiment per run: ``python -m arena_env serve --scenario interference
--seconds-per-day 2 --db <tmp> --manifest-out <tmp>`` (``--manual-clock`` for the manual-clock run), a
subprocess started exactly as a user starts it; its tokens come from the manifest.  ``interference`` has
the most variants a scenario may have (4 treatments + the control = 5 tokens; ``n_agents`` is capped at
4) at 20,000 users, so a simulated day costs a few milliseconds, as on a real server.  The 50 agents are
dealt round-robin to the 5 tokens (10 per token, the control's included): several agents polling one
variant is what a team running replicas or a dashboard next to its agent does, and the server puts no
limit on it.  At 2 s per day a 60-second run simulates ~30 days while it is loaded (the day steps run
inside the requests that cross a boundary, or in the server's 1-second ticker).

**Agents.**  Each agent is an asyncio task with its own ``httpx.AsyncClient`` (own keep-alive
connection, as the TendedLoop SDK, which uses httpx, has) and loops with no think time (``--think-ms``
adds one after each loop): ``GET /api/arena/signals``, ``GET /api/arena/variant``, every 5th loop
``GET /api/arena/scoreboard`` and (another loop) ``GET /api/arena/decisions``, ``POST
/api/arena/heartbeat {requestedPollInterval: 60}``, ``PUT /api/arena/variant/config`` with a random
``scanXp`` in 8..14.  Most proposals come back ``accepted: false`` (``RATE_LIMITED``: one update per
simulated hour = 83 ms of wall time per variant at 2 s/day; the control's are
``CONTROL_VARIANT_IMMUTABLE``): HTTP 200 with ``success: true``, counted as successes.  An **error** is
a non-2xx status, an exception (connection, timeout of ``--timeout`` s) or ``success: false``.  The
``signals`` mix polls ``GET /api/arena/signals`` only (the workload of the TendedLoop sandbox figure
quoted in the issue).

**Measurement.**  The load generator runs in its own process(es) (``--client-procs``), pinned to
the CPUs the server is not pinned to (server on CPU 0, clients on the others; ``--no-pin`` disables) so
that it neither slows the server nor is mistaken for it.  Agents first run ``--warmup`` seconds untimed,
then every request *started* in the next ``--seconds`` seconds is timed client-side
(``time.perf_counter`` around the request, response body read and parsed) and counted.
Requests/s = timed requests / the window.  Reported: p50, p90, p99, max, requests/s overall and per
endpoint, errors (count and the first messages), the server's CPU time (``/proc/<pid>/stat``, all its
threads) and the load generator's, and the CPUs other processes kept busy (``/proc/stat``).

Targets (the wall-clock ``agent`` run): 0 errors, p99 < 50 ms, >= 845 requests/s (5x the 169/s the
TendedLoop sandbox served to 50 concurrent clients on loopback).  The script exits with status 1
when a target of a full run is missed (a ``--quick`` run or one with other settings only reports).  Writes ``benchmarks/results/bench_server.json`` (``--quick``:
``runs/benchmarks/bench_server-quick.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_env import machine, out_help, resolve_out  # noqa: E402  (date, platform, CPU model and count, load averages)

TARGET_ERRORS = 0
TARGET_P99_MS = 50.0
TARGET_RPS = 845.0  # 5 x 169 requests/s, the TendedLoop sandbox with 50 concurrent clients
ENDPOINTS = ("signals", "variant", "scoreboard", "decisions", "heartbeat", "config")
ROUTE = {"signals": ("GET", "/api/arena/signals"), "variant": ("GET", "/api/arena/variant"),
         "scoreboard": ("GET", "/api/arena/scoreboard"), "decisions": ("GET", "/api/arena/decisions"),
         "heartbeat": ("POST", "/api/arena/heartbeat"), "config": ("PUT", "/api/arena/variant/config")}

# Runs the server under cProfile, every thread included (threading.setprofile hooks each new thread; the
# main thread is enabled directly), and writes the merged stats when the server returns (SIGINT).
PROFILE_WRAPPER = r"""
import cProfile, pstats, sys, threading
out = sys.argv[1]
profiles = []
def hook(*_):
    p = cProfile.Profile(); profiles.append(p); p.enable()
threading.setprofile(hook)
main = cProfile.Profile(); profiles.append(main)
sys.argv = ["arena_env", *sys.argv[2:]]
from arena_env.__main__ import main as run
main.enable()
try:
    rc = run()
finally:
    main.disable()
    st = None
    for p in profiles:
        try:
            p.disable()
        except Exception:
            pass
        p.create_stats()
        if not p.stats:
            continue
        if st is None:
            st = pstats.Stats(p)
        else:
            st.add(p)
    if st is not None:
        st.dump_stats(out)
sys.exit(rc)
"""


# ------------------------------------------------------------------------------------------- machine
def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("fastapi", "starlette", "uvicorn", "pydantic", "h11", "httptools", "uvloop", "anyio", "httpx",
                "numpy", "numba"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    import sqlite3

    out["sqlite"] = sqlite3.sqlite_version
    return out


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / TICK


def busy_cpus() -> float | None:
    """CPU seconds the whole machine has been busy (incl. steal), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return None
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------- server
class Server:
    """``python -m arena_env serve`` in a subprocess, on a fresh database; its manifest once it answers."""

    def __init__(self, tmp: Path, tag: str, scenario: str, clock: str, seconds_per_day: float, cpus: set[int] | None,
                 profile_out: Path | None = None):
        self.port = free_port()
        self.db, man = tmp / f"{tag}.db", tmp / f"{tag}-manifest.json"
        serve = ["serve", "--scenario", scenario, "--port", str(self.port), "--db", str(self.db),
                 "--manifest-out", str(man)]
        serve += ["--manual-clock"] if clock == "manual" else ["--seconds-per-day", str(seconds_per_day)]
        cmd = ([sys.executable, "-c", PROFILE_WRAPPER, str(profile_out), *serve] if profile_out
               else [sys.executable, "-m", "arena_env", *serve])
        self.command = " ".join(["python -m arena_env", *serve])
        self.log = open(tmp / f"{tag}-server.log", "w+")
        pre = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=pre)
        self.url = f"http://127.0.0.1:{self.port}"
        t_end = time.monotonic() + 180
        self.manifest = None
        import httpx

        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.log.read()[-2000:]}")
            if self.manifest is None and man.exists():
                try:
                    self.manifest = json.loads(man.read_text())
                except ValueError:
                    pass
            if self.manifest is not None:
                try:
                    r = httpx.get(self.url + "/api/arena/variant", timeout=2,
                                  headers={"Authorization": "Bearer " + self.manifest["variants"][0]["strategyToken"]})
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not answer within 180 s")

    def cpu(self) -> float | None:
        return proc_cpu(self.proc.pid)

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        import httpx

        r = httpx.request(method, self.url + path, json=body, timeout=30,
                          headers={"Authorization": "Bearer " + self.manifest["adminToken"]})
        r.raise_for_status()
        return r.json()["data"]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully (the profile gets written)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        # the first lines (the manifest's banner) and the last: a traceback of a 500 lands there
        self.log_head_tail = (text[:600], text[-3000:] if len(text) > 600 else "")
        return self.proc.returncode


# ------------------------------------------------------------------------------------------- agents
class RawClient:
    """A lean HTTP/1.1 keep-alive client on one asyncio stream (one connection per agent): a request costs the
    load generator ~0.1 ms of CPU instead of httpx's ~1.5 ms on this machine, so 50 agents need far less than
    a core and the generator does not limit what is measured.  Responses need a Content-Length (the server's
    JSON responses have one)."""

    def __init__(self, url: str, token: str, timeout: float):
        from urllib.parse import urlsplit

        u = urlsplit(url)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.head = f"Host: {u.netloc}\r\nAuthorization: Bearer {token}\r\nUser-Agent: bench_server\r\n"
        self.reader = self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: dict | None) -> tuple[int, Any]:
        try:
            return await asyncio.wait_for(self._request(method, path, body), self.timeout)
        except BaseException:
            await self.close()  # a connection in an unknown state is not reused
            raise

    async def _request(self, method: str, path: str, body: dict | None) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = b"" if body is None else json.dumps(body).encode()
        extra = f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n" if body is not None else ""
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode("latin-1") + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = None, False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and v.strip().lower() == "close":
                close = True
            elif k == "transfer-encoding":
                raise RuntimeError(f"unsupported transfer-encoding {v.strip()!r}")
        if length is None:
            raise RuntimeError("a response without Content-Length")
        raw = await self.reader.readexactly(length)
        if close:
            await self.close()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")


class HttpxClient:
    """The same interface over ``httpx.AsyncClient`` (what the TendedLoop SDK uses), one connection per agent."""

    def __init__(self, url: str, token: str, timeout: float):
        import httpx

        self.client = httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer " + token}, timeout=timeout,
                                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def close(self) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, body: dict | None) -> tuple[int, Any]:
        r = await self.client.request(method, path, json=body)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}


async def _agent(k: int, url: str, token: str, mix: str, t_start: float, t_end: float, interval: float,
                 timeout: float, kind: str, rec: dict) -> None:
    rng = random.Random(1000 + k)
    lat = rec["lat"]
    client = CLIENTS[kind](url, token, timeout)
    due = time.perf_counter() + rng.random() * max(interval, 0.2)  # agents do not start in lockstep

    async def call(name: str, body: dict | None = None, query: str = "") -> dict | None:
        nonlocal due
        method, path = ROUTE[name]
        if interval > 0:  # paced: one request every `interval` s; a late agent sends at once, without catching up
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            elif t_start <= due:
                rec["late"] += 1
            due = max(due, time.perf_counter() - interval) + interval
        t0 = time.perf_counter()
        data = err = None
        try:
            status, payload = await client.request(method, path + query, body)
            if not (200 <= status < 300):
                err = f"{name}: HTTP {status}: {str(payload)[:200]}"
            elif not (isinstance(payload, dict) and payload.get("success") is True):
                err = f"{name}: success is not true: {str(payload)[:200]}"
            else:
                data = payload.get("data")
        except Exception as exc:  # noqa: BLE001 - every failure is an error of the benchmark
            err = f"{name}: {type(exc).__name__}: {str(exc)[:200]}"
        t1 = time.perf_counter()
        if t0 >= t_start:
            lat[name].append(t1 - t0)
            if err is not None:
                rec["errors"] += 1
                if len(rec["messages"]) < 10:
                    rec["messages"].append(err)
            elif name == "config":
                rec["hold" if data.get("decisionLogId") is None else
                    "accepted" if data.get("accepted") else "rejected"] += 1
        return data

    try:
        if interval <= 0:
            await asyncio.sleep(due - time.perf_counter())
        i = rng.randrange(5)
        current = None
        while time.perf_counter() < t_end:
            await call("signals")
            if mix == "agent":
                var = await call("variant")
                if var is not None:
                    current = var["currentConfig"].get("scanXp")
                if i % 5 == 0:
                    await call("scoreboard")
                if i % 5 == 2:
                    await call("decisions", query="?page=1&pageSize=20")
                await call("heartbeat", {"requestedPollInterval": 60, "metadata": {"agent": f"bench-{k}"}})
                # a value other than the current one as last read (another agent of the variant may have
                # changed it since: then the proposal is a hold, answered without a decision)
                value = rng.choice([x for x in range(8, 15) if x != current])
                await call("config", {"economyOverrides": {"scanXp": value}, "reasoning": "load benchmark"})
            i += 1
    finally:
        await client.close()


def client_main(url: str, tokens: list[tuple[int, str]], mix: str, t_start: float, t_end: float, interval: float,
                timeout: float, kind: str, cpus: set[int] | None, out) -> None:
    """One load-generator process: an asyncio task per agent; sends its records through ``out``."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    rec = {"lat": {e: [] for e in ENDPOINTS}, "errors": 0, "messages": [], "accepted": 0, "rejected": 0, "hold": 0,
           "late": 0}

    async def run():
        await asyncio.gather(*(_agent(k, url, tok, mix, t_start, t_end, interval, timeout, kind, rec) for k, tok in tokens))

    asyncio.run(run())
    out.send(rec)
    out.close()


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (p99 of 1,000 samples = the 990th smallest)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(-(-q * len(s) // 1)) - 1))]


def stats_ms(xs: list[float], window: float) -> dict:
    ms = [x * 1000 for x in xs]
    return {"requests": len(ms), "requests_per_s": len(ms) / window,
            "p50_ms": percentile(ms, 0.50), "p90_ms": percentile(ms, 0.90), "p99_ms": percentile(ms, 0.99),
            "max_ms": max(ms) if ms else float("nan"), "mean_ms": statistics.fmean(ms) if ms else float("nan")}


def run_load(args, name: str, clock: str, mix: str, seconds: float, rate: float, tmp: Path,
             profile_out: Path | None = None) -> dict:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = not args.no_pin and len(cpus) >= 2
    server_cpus, client_cpus = ({cpus[0]}, set(cpus[1:])) if pin else (None, None)
    srv = Server(tmp, name, args.scenario, clock, args.seconds_per_day, server_cpus, profile_out)
    try:
        man = srv.manifest
        toks = [v["strategyToken"] for v in man["variants"]]
        if clock == "manual":
            srv.admin("POST", "/api/admin/advance", {"days": 10})  # everybody recruited, proposals possible
        agents = [(k, toks[k % len(toks)]) for k in range(args.agents)]
        procs = max(1, min(args.client_procs, args.agents))
        ctx = mp.get_context("spawn")
        t_start = time.perf_counter() + args.warmup + 1.0 + 0.5 * procs  # spawning takes ~0.3 s a process
        t_end = t_start + seconds
        workers = []
        for j in range(procs):
            a, b = ctx.Pipe(duplex=False)
            p = ctx.Process(target=client_main, args=(srv.url, agents[j::procs], mix, t_start, t_end,
                                                      args.agents / rate if rate > 0 else 0.0, args.timeout,
                                                      args.client, client_cpus, b))
            p.start()
            workers.append((p, a))
        time.sleep(max(0.0, t_start - time.perf_counter()))
        s0, m0, w0, day0 = srv.cpu(), busy_cpus(), time.perf_counter(), None
        g0, own0 = [proc_cpu(w.pid) for w, _ in workers], os.times()
        try:
            day0 = srv.admin("GET", "/api/admin/clock")["day"]
        except Exception:  # noqa: BLE001
            pass
        time.sleep(max(0.0, t_end - time.perf_counter()))
        s1, m1, w1 = srv.cpu(), busy_cpus(), time.perf_counter()
        g1, own1 = [proc_cpu(w.pid) for w, _ in workers], os.times()
        recs = []
        for p, a in workers:
            recs.append(a.recv())
            p.join(60)
        try:
            clock_state = srv.admin("GET", "/api/admin/clock")
        except Exception:  # noqa: BLE001
            clock_state = None
    finally:
        rc = srv.stop()
    window = seconds
    lat = {e: [x for r in recs for x in r["lat"][e]] for e in ENDPOINTS}
    every = [x for e in ENDPOINTS for x in lat[e]]
    wall = w1 - w0
    server_cpu = None if s0 is None or s1 is None else s1 - s0
    client_cpu = None if None in g0 or None in g1 else sum(g1) - sum(g0)
    own = (own1.user - own0.user) + (own1.system - own0.system)
    foreign = None
    if m0 is not None and server_cpu is not None and client_cpu is not None:
        # the machine's busy time in the window minus the server's, the load generator's and this process's
        foreign = max(0.0, ((m1 - m0) - server_cpu - client_cpu - own) / wall)
    res = {"name": name, "clock": clock, "mix": mix, "client": args.client, "server_command": srv.command, "agents": args.agents,
           "tokens": len(toks),
           "client_processes": procs, "pinned": {"server": sorted(server_cpus) if pin else None,
                                                  "clients": sorted(client_cpus) if pin else None},
           "seconds": window, "warmup_s": args.warmup, "offered_rate": rate or None,
           "per_agent_interval_ms": args.agents / rate * 1000 if rate > 0 else 0.0,
           "late_requests": sum(r["late"] for r in recs),
           **stats_ms(every, window),
           "errors": sum(r["errors"] for r in recs), "error_messages": [m for r in recs for m in r["messages"]][:10],
           "proposals": {k: sum(r[k] for r in recs) for k in ("accepted", "rejected", "hold")},
           "endpoints": {e: stats_ms(lat[e], window) for e in ENDPOINTS if lat[e]},
           "server_cpu_s": server_cpu, "server_cpu_share": None if server_cpu is None else server_cpu / wall,
           "server_cpu_ms_per_request": None if server_cpu is None or not every else server_cpu / len(every) * 1000,
           "client_cpu_s": client_cpu, "client_cpu_share": None if client_cpu is None else client_cpu / wall / procs,
           "foreign_cpus": foreign, "server_exit_code": rc,
           "server_log": {"bytes": None, "tail": srv.log_head_tail[1][-1500:]},
           "simulated_days": None if clock_state is None or day0 is None else clock_state["day"] - day0,
           "day_end": None if clock_state is None else clock_state["day"]}
    return res


def fmt_row(name: str, s: dict) -> str:
    return (f"  {name:<11} {s['requests']:>8,} {s['requests_per_s']:>9,.1f} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} "
            f"{s['p99_ms']:>8.2f} {s['max_ms']:>8.1f}")


def print_run(r: dict) -> None:
    pace = f"paced at {r['offered_rate']:g} req/s" if r["offered_rate"] else "no think time"
    print(f"{r['name']}: {r['clock']} clock, {r['mix']} mix, {pace}: {r['agents']} agents on {r['tokens']} tokens, "
          f"{r['seconds']:g} s, "
          f"{r['errors']} errors; server CPU {r['server_cpu_share'] or float('nan'):.2f} "
          f"({r['server_cpu_ms_per_request'] or float('nan'):.2f} ms per request), load generator CPU "
          f"{r['client_cpu_share'] or float('nan'):.2f} per process, others {r['foreign_cpus'] if r['foreign_cpus'] is not None else float('nan'):.2f} CPUs"
          + (f"; {r['simulated_days']} days simulated" if r.get("simulated_days") is not None else ""))
    print(f"  {'endpoint':<11} {'requests':>8} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for e, s in r["endpoints"].items():
        print(fmt_row(e, s))
    print(fmt_row("all", r))
    if r["proposals"]["accepted"] + r["proposals"]["rejected"]:
        print(f"  proposals: {r['proposals']['accepted']:,} accepted, {r['proposals']['rejected']:,} rejected, "
              f"{r['proposals']['hold']:,} holds (all HTTP 200)")
    for m in r["error_messages"][:5]:
        print(f"  error: {m}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=50, help="concurrent agents (default 50)")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds of the main run (default 60; 8 with --quick)")
    p.add_argument("--extra-seconds", type=float, default=20.0,
                   help="timed seconds of the manual-clock and signals-only runs (default 20; 0 skips them)")
    p.add_argument("--warmup", type=float, default=2.0, help="untimed seconds of load before each window (default 2)")
    p.add_argument("--rate", type=float, default=900.0,
                   help="requests/s offered by all agents together in the paced runs (default 900; 0: no pacing)")
    p.add_argument("--scenario", default="interference", help="scenario served (default interference: 5 variants)")
    p.add_argument("--seconds-per-day", type=float, default=2.0, help="the wall clock's seconds per day (default 2)")
    p.add_argument("--client-procs", type=int, default=1, help="load-generator processes (default 1)")
    p.add_argument("--client", choices=sorted(CLIENTS), default="raw",
                   help="load generator's HTTP client: raw (a lean asyncio HTTP/1.1 client, default) or httpx")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds (default 10)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0 and the clients to the others")
    p.add_argument("--quick", action="store_true", help="one 8-second wall-clock run (a smoke run of ~15 s)")
    p.add_argument("--profile", action="store_true", help="run the main server under cProfile and print its top functions")
    p.add_argument("--out", type=Path, default=None, help=out_help("bench_server"))
    args = p.parse_args(argv)
    args.out = resolve_out("bench_server", p, args)
    seconds = args.seconds or (8.0 if args.quick else 60.0)
    if args.agents < 1 or seconds <= 0 or args.client_procs < 1:
        p.error("--agents, --seconds and --client-procs must be positive")
    exe = Path(sys.executable)
    exe = os.path.relpath(exe, ROOT) if exe.is_relative_to(ROOT) else str(exe)
    result = {"benchmark": "server", "command": " ".join([exe, *sys.argv]), "machine": machine(),
              "versions": versions(), "targets_definition": {"errors": TARGET_ERRORS, "p99_ms_below": TARGET_P99_MS,
                                                             "requests_per_s_at_least": TARGET_RPS},
              "runs": []}
    x = args.extra_seconds
    plan = [("paced", "wall", "agent", seconds, args.rate)]
    if not args.quick and x > 0:
        plan += [("saturated", "wall", "agent", x, 0.0), ("manual-clock", "manual", "agent", x, args.rate),
                 ("signals-saturated", "wall", "signals", x, 0.0)]
    elif x > 0:
        plan += [("saturated", "wall", "agent", min(x, 5.0), 0.0)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i, (name, clock, mix, secs, rate) in enumerate(plan):
            prof = tmp / "server.prof" if args.profile and i == 0 else None
            r = run_load(args, name, clock, mix, secs, rate, tmp, prof)
            result["runs"].append(r)
            print_run(r)
            if prof is not None and prof.exists():
                import io
                import pstats

                buf = io.StringIO()
                st = pstats.Stats(str(prof), stream=buf)
                st.sort_stats("tottime").print_stats(30)
                st.sort_stats("cumulative").print_stats(40)
                result["profile_top"] = buf.getvalue()[:20000]
                print(buf.getvalue())
    paced = result["runs"][0]
    t = {"errors": {"run": "paced", "value": paced["errors"], "threshold": TARGET_ERRORS,
                    "passed": paced["errors"] <= TARGET_ERRORS},
         "p99_ms": {"run": "paced", "value": paced["p99_ms"], "threshold": TARGET_P99_MS,
                    "passed": paced["p99_ms"] < TARGET_P99_MS},
         "requests_per_s": {"run": "paced", "value": paced["requests_per_s"], "threshold": TARGET_RPS,
                            "passed": paced["requests_per_s"] >= TARGET_RPS}}
    sat = next((r for r in result["runs"] if r["name"] == "saturated"), None)
    if sat is not None:
        t["saturated_requests_per_s"] = {"run": "saturated", "value": sat["requests_per_s"], "threshold": TARGET_RPS,
                                         "passed": sat["requests_per_s"] >= TARGET_RPS and sat["errors"] == 0}
    for v in t.values():
        v["indicative_only"] = seconds < 60 or args.agents != 50 or (args.rate and args.rate < TARGET_RPS)
    result["targets"] = t
    result["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    failed = [k for k, v in t.items() if not v["passed"]]
    print(f"targets ({args.agents} agents; paced run: {paced['offered_rate'] or 0:g} req/s offered): "
          f"errors {t['errors']['value']} (0), p99 {t['p99_ms']['value']:.1f} ms (< {TARGET_P99_MS:g}), "
          f"{t['requests_per_s']['value']:,.0f} req/s (>= {TARGET_RPS:g})"
          + (f"; saturated {t['saturated_requests_per_s']['value']:,.0f} req/s (>= {TARGET_RPS:g})" if sat else "")
          + ": " + ("pass" if not failed else "FAIL: " + ", ".join(failed))
          + (" (indicative only)" if t["errors"]["indicative_only"] else ""))
    print(f"wrote {args.out}")
    return 1 if failed and not t["errors"]["indicative_only"] else 0  # a smoke run (--quick, fewer agents) only reports


if __name__ == "__main__":
    sys.exit(main())
