"""The live scoreboard: a self-contained page at ``/`` and the admin-only data behind it.

:func:`mount_live` adds three routes to an app made by :func:`~.app.create_app` (idempotent: a second call
returns the first :class:`LiveBoard`, kept in ``app.state.live``):

=========================  ==========================================================================
``GET /``                  the page (``live.html``, next to this module): public, static, holds no data
                           and no token; a strict Content-Security-Policy admits only its own inline
                           script and style (by hash) and connections to this origin
``GET /api/live/state``    the snapshot below, in the usual envelope (``{"success": true, "data": ...}``)
``GET /api/live/stream``   Server-Sent Events (``text/event-stream``): ``event: state`` with the snapshot
                           on connect and whenever it changes, ``: keep-alive`` comments every
                           ``keepalive`` seconds (15), ``event: shutdown`` before the stream ends because
                           the server stops.  Not in ``/openapi.json``: it never ends by itself, which
                           generated-request fuzzers cannot handle
=========================  ==========================================================================

Both data routes need the **admin** token (``Authorization: Bearer <admin token>``): the snapshot holds
every variant's config and every decision's reasoning, which the competing agents must not see.  Missing,
unknown or revoked tokens get 401, a strategy token 403, in the error envelope.  The page takes the
token from its URL fragment (``/#token=<admin token>``: a fragment is never sent to a server, so it is in
no access log), keeps it in ``sessionStorage``, drops the fragment from the address bar, and otherwise
shows a form to paste it.  EventSource cannot send headers, so the page reads the stream with
``fetch()`` and a stream reader, and reconnects with backoff (0.5 s doubling to 10 s).

Snapshot (camelCase, JSON numbers; ``None`` where a value is undefined)::

    {"experiment": {experimentId, experimentName, scenario, manualClock},
     "clock": {minute, day, status, maxDays, finished},          # Experiment.clock_state()
     "metricNames": [...], "parameterNames": [...], "ciLevel": 0.95,
     "variants": [{variantId, variantName, isControl, currentConfig, lastConfigUpdate, lastHeartbeat,
                   enrolledCount, activeCount, totalDecisions, breakerOpen, anomaly,
                   "metrics": {NAME: {value, stdDev, sampleSize, confidence, ciLow, ciHigh}},
                   "lift": None (the control, or day 0) | {NAME: {test, difference, ciLow, ciHigh,
                                                                  pValue, significant}}}],
     "history": {"days": [1, ..., day],
                 "lift": {treatment variantId: {NAME: {"difference": [...], "ciLow": [...],
                                                       "ciHigh": [...]}}}},   # one entry per day
     "decisions": [the protocol's decision items (GET /api/arena/decisions) of every variant, with
                   variantId, variantName, minute and day (minute / 1440), newest first, at most 50],
     "decisionsTotal": int}

``metrics`` are the scoreboard's (``Experiment.scoreboard()``, the env's own ``signals``) with a 95%
confidence interval of the mean: ``value -/+ t_{0.975, n-1} * stdDev / sqrt(n)`` (``n = sampleSize``;
Student's t quantile :func:`~arena_env.economy.stats_kernels.student_q975`, the one the model cards'
``paired_ci`` uses; ``None`` when ``n < 2``).  For the binary metrics ``stdDev`` is the env's
``sqrt(p (1 - p) n / (n - 1))``, so the interval is ``p -/+ t * sqrt(p (1 - p) / (n - 1))``.

``lift`` is treatment minus control on each metric with the 95% CI of Welch's test, exactly the env's
comparison (:func:`~arena_env.economy.stats_kernels.compare_to_control` through
:func:`~arena_env.economy.metrics.test_dicts`, the ``tests`` of the env's infos).  **History**: the env
keeps every simulated day's aggregates (``EconomyEnv.history_i`` / ``history_f``), and the day's metrics
are a pure function of them (:func:`~arena_env.economy.metrics.summarize`), so each day's lift is
recomputed from there with the env's own kernels, once per day (cached).  :meth:`Experiment.open
<.experiment.Experiment.open>` re-simulates the journal, which rebuilds the same history: it survives a
restart with no extra storage.

**Updates.**  The board subscribes to ``Experiment.listeners`` (config_updated, anomaly_detected,
circuit_breaker_triggered, day_simulated, heartbeat_timeout wake every stream at once).  Rejected
proposals and lifecycle actions emit no event, so every stream also compares a cheap fingerprint of the
experiment (minute, day, status, decision count, breakers, heartbeats) twice a second; a stream sends a
new ``state`` only when the snapshot's content changed.

**Shutdown.**  uvicorn waits for open responses to finish before it runs the app's lifespan shutdown, so
an endless stream would hold a graceful shutdown forever.  Streams therefore end (after ``event:
shutdown``) within half a second of any of: :meth:`LiveBoard.close`; the app's lifespan shutdown;
``should_exit`` of a uvicorn server passed to :meth:`LiveBoard.watch`; ``should_exit`` of the uvicorn
server whose signal handler is installed (``uvicorn.run`` in the main thread: Ctrl+C, SIGTERM), found
read-only through :func:`signal.getsignal`, nothing patched.
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import re
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from arena_env.economy import metrics as M
from arena_env.economy import stats_kernels as S
from arena_env.economy.env import MINUTES_PER_DAY
from arena_env.economy.params import PARAM_NAMES
from arena_env.economy.scenario import METRIC_NAMES

from .experiment import Experiment, Forbidden

PAGE = Path(__file__).with_name("live.html")
FEED_SIZE = 50
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 0.5
CI_LEVEL = 0.95


def metric_ci(value: float, std_dev: float, n: int) -> tuple[float | None, float | None]:
    """95% CI of a metric's mean from the protocol's ``{value, stdDev, sampleSize}``:
    ``value -/+ t_{0.975, n-1} * stdDev / sqrt(n)``; ``(None, None)`` when ``n < 2`` or not finite."""
    if n < 2 or not (math.isfinite(value) and math.isfinite(std_dev)):
        return None, None
    half = float(S.student_q975(float(n - 1))) * std_dev / math.sqrt(n)
    return value - half, value + half


def _decision_number(item: dict) -> int:
    """The guardrails' decision counter in ``dec_000123`` (ordering across variants)."""
    digits = re.sub(r"\D", "", str(item.get("id", "")))
    return int(digits) if digits else -1


class LiveBoard:
    """The snapshot of an experiment and the notification of its streams (see the module docstring)."""

    def __init__(self, exp: Experiment, *, keepalive: float = KEEPALIVE_SECONDS, poll: float = POLL_SECONDS):
        self.exp, self.keepalive, self.poll = exp, float(keepalive), float(poll)
        self._lock = threading.Lock()
        self._days: list[list[dict]] = []  # per simulated day, metrics.test_dicts of that day (cache)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._servers: list = []
        self.closing = threading.Event()
        exp.listeners.append(self.notify)

    # ------------------------------------------------------------------ the snapshot
    def _day_lift(self, d: int) -> list[dict]:
        """``test_dicts`` of day index ``d`` (0-based), recomputed from the env's per-day aggregates."""
        env = self.exp.env
        w = env.scenario.metric_window
        window_i = env.history_i[max(0, d - w + 1):d + 1].sum(axis=0)
        mean, var, n, succ, trials = M.summarize(env.history_i[d], env.history_f[d], window_i)
        out = np.empty((mean.shape[0], M.N_METRICS, S.N_TEST_FIELDS))
        env.kernels.compare_to_control(mean, np.where(np.isnan(var), 0.0, var), n, succ, trials, M.IS_BINARY, out)
        return M.test_dicts(out)

    def lift_history(self) -> list[list[dict]]:
        """Per simulated day (index 0 = day 1), per variant, ``{NAME: test dict}`` (``{}`` for the control)."""
        with self.exp.lock, self._lock:
            for d in range(len(self._days), int(self.exp.env.day)):
                self._days.append(self._day_lift(d))
            return list(self._days)

    def feed(self, size: int = FEED_SIZE) -> tuple[list[dict], int]:
        """The newest ``size`` decisions of every variant, newest first, and the total."""
        exp = self.exp
        items, total = [], 0
        with exp.lock:
            for v in range(len(exp.ids)):
                page = exp.decisions(v, 1, size)
                rows, _ = exp.store.decisions(v, 0, size)  # the same rows, in the same order: their minute
                total += page["total"]
                for item, row in zip(page["decisions"], rows):
                    minute = float(row["minute"])
                    items.append({**item, "variantId": exp.ids[v], "variantName": exp.names[v], "minute": minute,
                                  "day": minute / MINUTES_PER_DAY})
        items.sort(key=_decision_number, reverse=True)
        return items[:size], total

    def snapshot(self) -> dict[str, Any]:
        """The state the page shows (shape in the module docstring)."""
        exp = self.exp
        with exp.lock:
            board = exp.scoreboard()["variants"]
            days = self.lift_history()
            g = exp.env.guardrails
            variants = []
            for v, row in enumerate(board):
                metrics = {}
                for name, m in row["metrics"].items():
                    lo, hi = metric_ci(m["value"], m["stdDev"], m["sampleSize"])
                    metrics[name] = {**m, "ciLow": lo, "ciHigh": hi}
                lift = None
                if v > 0 and days:
                    lift = {name: {k: t[k] for k in ("test", "difference", "ciLow", "ciHigh", "pValue", "significant")}
                            for name, t in days[-1][v].items()}
                variants.append({**row, "metrics": metrics, "lift": lift, "breakerOpen": bool(g.breaker_open[v]),
                                 "anomaly": bool(g.anomaly[v])})
            history = {"days": list(range(1, len(days) + 1)),
                       "lift": {exp.ids[v]: {name: {k: [day[v][name][k] for day in days]
                                                    for k in ("difference", "ciLow", "ciHigh")}
                                             for name in METRIC_NAMES}
                                for v in range(1, len(exp.ids))}}
            decisions, total = self.feed()
            return {"experiment": {"experimentId": exp.meta["experiment_id"], "experimentName": exp.meta["name"],
                                   "scenario": exp.meta["scenario"], "manualClock": bool(exp.meta["manual_clock"])},
                    "clock": exp.clock_state(), "metricNames": list(METRIC_NAMES), "parameterNames": list(PARAM_NAMES),
                    "ciLevel": CI_LEVEL, "variants": variants, "history": history, "decisions": decisions,
                    "decisionsTotal": total}

    def fingerprint(self) -> tuple:
        """Cheap: changes whenever anything the snapshot shows may have changed."""
        exp = self.exp
        g = exp.env.guardrails
        return (exp.minute, int(exp.env.day), exp.status, int(g.n_decisions), g.breaker_open.tobytes(),
                g.anomaly.tobytes(), tuple(sorted((v, b["at"]) for v, b in list(exp.heartbeats.items()))))

    # ------------------------------------------------------------------ notification and shutdown
    def notify(self, event: str = "", variant: int | None = None, data: Any = None) -> None:
        """An ``Experiment.listeners`` callable (any thread): wake every stream."""
        for loop, ev in list(self._waiters):
            with contextlib.suppress(RuntimeError):  # that loop is closed: its stream is gone
                loop.call_soon_threadsafe(ev.set)

    def close(self) -> None:
        """End every stream (and refuse new ones) until :meth:`reopen`."""
        self.closing.set()
        self.notify()

    def reopen(self) -> None:
        self.closing.clear()

    def watch(self, server) -> None:
        """End the streams as soon as this uvicorn ``Server`` sets ``should_exit``."""
        self._servers.append(server)

    def stopping(self) -> bool:
        if self.closing.is_set() or any(getattr(s, "should_exit", False) for s in self._servers):
            return True
        for sig in (signal.SIGINT, signal.SIGTERM):
            owner = getattr(signal.getsignal(sig), "__self__", None)  # uvicorn.run: the bound Server.handle_exit
            if owner is not None and type(owner).__module__.startswith("uvicorn") and \
                    getattr(owner, "should_exit", False):
                return True
        return False

    async def events(self):
        """The SSE byte stream of one connection."""
        from starlette.concurrency import run_in_threadpool

        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        waiter = (loop, wake)
        self._waiters.add(waiter)
        try:
            last, seen = None, None
            sent = loop.time()  # when the last bytes went out: keep-alive after `keepalive` s of silence
            while True:
                if self.stopping():
                    yield b"event: shutdown\ndata: {}\n\n"
                    return
                fp = self.fingerprint()
                if last is None or wake.is_set() or fp != seen:
                    wake.clear()
                    seen = fp
                    text = json.dumps(await run_in_threadpool(self.snapshot), separators=(",", ":"), allow_nan=False)
                    if text != last:
                        last = text
                        sent = loop.time()
                        yield f"event: state\ndata: {text}\n\n".encode()
                        continue
                quiet = loop.time() - sent
                if quiet >= self.keepalive:
                    sent = loop.time()
                    yield b": keep-alive\n\n"
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(self.poll, max(self.keepalive - quiet, 0.01)))
        finally:
            self._waiters.discard(waiter)


def _csp(html: str) -> str:
    """A Content-Security-Policy that admits exactly the page's inline scripts and styles."""
    def hashes(tag):
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
                        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S))
    return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def mount_live(app, exp: Experiment, *, keepalive: float = KEEPALIVE_SECONDS, poll: float = POLL_SECONDS) -> LiveBoard:
    """Add the live page and its data routes to ``app`` (made by :func:`~.app.create_app` for ``exp``)."""
    existing = getattr(app.state, "live", None)
    if existing is not None:
        return existing
    from fastapi import Header
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool

    board = LiveBoard(exp, keepalive=keepalive, poll=poll)
    app.state.live = board
    html = PAGE.read_text(encoding="utf-8")
    page_headers = {"Cache-Control": "no-store", "Content-Security-Policy": _csp(html),
                    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a):
        board.reopen()
        try:
            async with inner(a) as state:
                yield state
        finally:
            board.close()

    app.router.lifespan_context = lifespan

    Auth = Annotated[str | None, Header(alias="Authorization", description="Bearer <admin token>")]

    def admin(authorization: str | None) -> None:
        exp.sync()
        if exp.authenticate(authorization).variant != -1:
            raise Forbidden("the live scoreboard needs the admin token")

    @app.get("/", include_in_schema=False)
    def live_page():
        return HTMLResponse(html, headers=page_headers)

    @app.get("/api/live/state")
    def live_state(authorization: Auth = None):
        """The live scoreboard's snapshot (admin token): variants, configs, metrics with 95% CIs, lift over
        the control with its history, the decision feed."""
        admin(authorization)
        return JSONResponse({"success": True, "data": board.snapshot()}, headers={"Cache-Control": "no-store"})

    @app.get("/api/live/stream", include_in_schema=False)
    async def live_stream(authorization: Auth = None):
        await run_in_threadpool(admin, authorization)
        if board.stopping():
            return JSONResponse({"success": False, "error": "the server is shutting down"}, status_code=503)
        return StreamingResponse(board.events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return board
