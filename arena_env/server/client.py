"""A client of the TendedLoop Arena HTTP protocol, written over the standard library only (``urllib``), so it
works for anyone who installed the package, against our sandbox (``python -m arena_env serve``) or any other
server that speaks the protocol.

:class:`ArenaClient` holds one strategy token (one variant of one experiment) and has one method per agent
endpoint; :class:`AdminClient` holds the admin token and has one method per researcher endpoint of our sandbox
(those are not part of the public protocol).  Every method returns the response's ``data`` (the envelope
``{"success": true, "data": ...}`` is unwrapped; a bare JSON object is accepted as it is), as plain dicts and
lists in the protocol's camelCase.

======================================  ==========================================================
``ArenaClient`` method                  request
======================================  ==========================================================
``variant()``                           ``GET /api/arena/variant``
``signals()``                           ``GET /api/arena/signals``
``update_config(overrides, ...)``       ``PUT /api/arena/variant/config`` (alias ``propose``)
``heartbeat(poll_interval, metadata)``  ``POST /api/arena/heartbeat``
``scoreboard()``                        ``GET /api/arena/scoreboard`` (returns the ``variants`` list)
``decisions(page, page_size)``          ``GET /api/arena/decisions?page=&pageSize=``
``iter_decisions(page_size)``           every decision, newest first, page after page
``register_webhook(url, events)``       ``POST /api/arena/webhooks``
``delete_webhook(webhook_id)``          ``DELETE /api/arena/webhooks/{webhookId}``
======================================  ==========================================================

``AdminClient``: ``pause()``, ``resume()``, ``complete()``, ``advance(minutes=|days=)`` (the manual clock),
``clock()``, ``reset_breaker(variant_id)``, ``revoke(variant_id)`` (``/api/admin/...``).

**Guardrail rejections are not errors.**  A proposal the guardrails refuse comes back with HTTP 200 and
``accepted: false`` plus ``rejectionReason`` (``CONTROL_VARIANT_IMMUTABLE``, ``EXPERIMENT_NOT_RUNNING``,
``CIRCUIT_BREAKER_ACTIVE``, ``RATE_LIMITED``); a clamped update is accepted with ``clampedDeltas``.

**Errors.**  Everything else raises an :class:`ArenaError` carrying ``status`` (None when no HTTP answer came),
``server_message`` (the envelope's ``error``), ``method``, ``url`` and ``attempts``; its message names the
request, the status, the server's words and the fix.  Subclasses by cause:

=========================  ==============================================================================
:class:`ArenaBadRequest`   400 and the other 4xx not below: the payload was refused (nothing changed)
:class:`ArenaAuthError`    401: missing, unknown, expired or revoked token (the message shows its prefix)
:class:`ArenaForbidden`    403: the experiment is paused or over, or the token may not call this endpoint;
                           an agent loop stops there
:class:`ArenaNotFound`     404: unknown path or id (a webhook, a variant)
:class:`ArenaThrottled`    429 that outlasted the retries
:class:`ArenaServerError`  5xx that outlasted the retries (or any 5xx of a request that is not retried)
:class:`ArenaConnectionError`  no HTTP answer: refused connection, unknown host, timeout, reset
=========================  ==============================================================================

Invalid arguments (an empty or non-numeric ``economyOverrides``, a negative value, a non-http(s) URL) raise
``ValueError`` before anything is sent.

**Retries.**  Up to ``retries`` more attempts (default 2), waiting ``backoff * 2**k`` seconds (1 s, then 2 s by
default; a 429's ``Retry-After`` is honoured), capped at ``max_backoff``, and only for transient failures: a
connection that could not be made, a timeout or reset, HTTP 429, 500, 502, 503 and 504.  4xx answers are
never retried.  A request that is not idempotent (the config ``PUT``, registering a webhook, the lifecycle and
``advance`` admin calls) is retried only when it certainly did not take effect: the connection could not be
made (nothing was sent) or the server answered 429.  After a timeout, a reset or a 5xx such a request may have
been applied, so it raises at once and the message says to check ``decisions()`` (or ``clock()``) before
trying again.

**Transport.**  JSON bodies (UTF-8, ``allow_nan=False``), ``Authorization: Bearer <token>`` on every request.
Plain ``http://`` is refused except for localhost, 127.0.0.1 and [::1] (the token would travel in clear
text) unless ``allow_http=True``.  Environment proxies are used, except for those local hosts.  There is no
connection pool: each request opens its own connection, so an instance can be shared between threads.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["AdminClient", "ArenaAuthError", "ArenaBadRequest", "ArenaClient", "ArenaConnectionError", "ArenaError",
           "ArenaForbidden", "ArenaNotFound", "ArenaServerError", "ArenaThrottled"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses that are retried (429 for every request, the 5xx only for idempotent ones)."""
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SERVE_HINT = "start one with `python -m arena_env serve` (it prints the URL and the tokens) or fix the URL"


class ArenaError(Exception):
    """A protocol request failed (see the module docstring for the subclasses).

    Attributes: ``status`` (the HTTP status, None without an answer), ``server_message`` (the server's
    ``error`` text, or None), ``method``, ``url`` and ``attempts`` (requests made, retries included).
    """

    def __init__(self, message: str, *, status: int | None = None, server_message: str | None = None,
                 method: str = "", url: str = "", attempts: int = 1):
        super().__init__(message)
        self.status, self.server_message = status, server_message
        self.method, self.url, self.attempts = method, url, attempts


class ArenaBadRequest(ArenaError):
    """HTTP 400 (or another 4xx without a class of its own): the request was refused, nothing changed."""


class ArenaAuthError(ArenaError):
    """HTTP 401: the token is missing, unknown, expired or revoked."""


class ArenaForbidden(ArenaError):
    """HTTP 403: the experiment is paused or over, or this token may not call the endpoint."""


class ArenaNotFound(ArenaError):
    """HTTP 404: unknown path or id."""


class ArenaThrottled(ArenaError):
    """HTTP 429 after the retries."""


class ArenaServerError(ArenaError):
    """HTTP 5xx (after the retries, for requests that are retried)."""


class ArenaConnectionError(ArenaError):
    """No HTTP answer: the server could not be reached, or the connection timed out or broke."""


def _redact(token: str) -> str:
    """A token as it may appear in a message: its first characters only."""
    return f"{token[:6]}..." if len(token) >= 12 else "(a short token)"


def check_overrides(overrides: Any) -> dict[str, int | float]:
    """``economyOverrides`` as the protocol allows them: a non-empty mapping of parameter names to finite numbers
    >= 0 (booleans are not numbers).  Returns a plain dict; raises ``ValueError`` naming the first bad entry.
    Parameter names are not checked here: the server knows its parameters (ours answers 400 for an unknown one)."""
    if not isinstance(overrides, Mapping) or not overrides:
        raise ValueError(f"economyOverrides: expected a non-empty mapping of parameter names to numbers, got "
                         f"{overrides!r}")
    out = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"economyOverrides: parameter names must be non-empty strings, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise ValueError(f"economyOverrides.{key}: expected a number, got {value!r}")
        x = float(value)
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"economyOverrides.{key}: expected a finite number >= 0, got {value!r}")
        out[key] = int(value) if isinstance(value, int) or float(x).is_integer() and abs(x) < 2**53 else x
    return out


class _Http:
    """The transport shared by both clients (see the module docstring: envelopes, errors, retries)."""

    role = "strategy"

    def __init__(self, api_url: str, token: str, *, timeout: float = 10.0, retries: int = 2, backoff: float = 1.0,
                 max_backoff: float = 30.0, allow_http: bool = False):
        if not isinstance(api_url, str):
            raise ValueError(f"api_url: expected a URL such as 'http://127.0.0.1:7860', got {api_url!r}")
        parts = urllib.parse.urlsplit(api_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_url: expected an http(s) URL with a host, such as 'http://127.0.0.1:7860', got "
                             f"{api_url!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError(f"api_url: invalid port in {api_url!r}") from None
        self.local = parts.hostname in LOCAL_HOSTS
        if parts.scheme == "http" and not self.local and not allow_http:
            raise ValueError(f"api_url: refusing plain http to {parts.hostname} ({api_url}): the token would travel "
                             "in clear text; use https, or pass allow_http=True on a trusted network")
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
            raise ValueError(f"token: expected the {self.role} token (a non-empty string without spaces), got "
                             f"{type(token).__name__}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout: expected seconds > 0, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")
        if not (isinstance(backoff, (int, float)) and backoff >= 0 and max_backoff >= 0):
            raise ValueError(f"backoff, max_backoff: expected seconds >= 0, got {backoff!r}, {max_backoff!r}")
        self.api_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.token = token.strip()
        self.timeout, self.retries = float(timeout), retries
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        handlers = [urllib.request.ProxyHandler({})] if self.local else []
        self._opener = urllib.request.build_opener(*handlers)
        self._sleep = time.sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api_url!r}, token={_redact(self.token)!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release (no connection is kept open); present for symmetry with other clients."""

    # ------------------------------------------------------------------ the transport
    def _request(self, method: str, path: str, body: Any = None, *, idempotent: bool = True,
                 query: Mapping[str, Any] | None = None) -> Any:
        """One protocol call: the response's ``data``, or an :class:`ArenaError` (retries as documented)."""
        url = self.api_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            data = None if body is None else json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        except TypeError as exc:  # an object JSON cannot carry (in metadata, signals): refused before sending
            raise ValueError(f"{method} {path}: the request is not JSON ({exc}); pass only strings, numbers, bools, "
                             "None, lists and dicts") from None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            retry_after = None
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                    return self._data(method, url, resp.status, raw, attempt)
            except urllib.error.HTTPError as exc:
                status = exc.code
                raw = exc.read() if exc.fp is not None else b""
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                retriable = status == 429 or (status in RETRY_STATUSES and idempotent)
                if not retriable or attempt > self.retries:
                    raise self._http_error(method, url, status, raw, attempt, idempotent) from None
            except urllib.error.URLError as exc:  # raised before the request was sent: safe to repeat
                if attempt > self.retries:
                    raise self._unreachable(method, url, exc.reason, attempt, sent=False) from None
            except (OSError, http.client.HTTPException) as exc:  # timeout or reset after sending
                if not idempotent or attempt > self.retries:
                    raise self._unreachable(method, url, exc, attempt, sent=True, idempotent=idempotent) from None
            self._sleep(self._delay(attempt, retry_after))

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        wait = self.backoff * 2 ** (attempt - 1)
        if retry_after is not None and retry_after.strip().isdigit():
            wait = max(wait, float(retry_after.strip()))
        return min(wait, self.max_backoff)

    def _data(self, method: str, url: str, status: int, raw: bytes, attempt: int) -> Any:
        if status == 204 or not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ArenaError(f"{method} {url}: HTTP {status} but the body is not JSON ({raw[:120]!r}): is this an "
                             "arena server?", status=status, method=method, url=url, attempts=attempt) from None
        if isinstance(body, dict) and body.get("success") is False:  # an error envelope with a 2xx status
            said = self._server_message(raw)
            raise ArenaError(f"{method} {url}: HTTP {status} with an error envelope: {said}", status=status,
                             server_message=said, method=method, url=url, attempts=attempt)
        if isinstance(body, dict) and body.get("success") is True and "data" in body:
            return body["data"]
        return body

    @staticmethod
    def _server_message(raw: bytes) -> str | None:
        try:
            body = json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace").strip()
            return text[:300] or None
        if isinstance(body, dict):
            for key in ("error", "detail", "message"):
                if body.get(key):
                    return str(body[key])
        return None

    def _http_error(self, method: str, url: str, status: int, raw: bytes, attempt: int, idempotent: bool) -> ArenaError:
        said = self._server_message(raw)
        head = f"{method} {url}: HTTP {status}" + (f": {said}" if said else "")
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        kw = dict(status=status, server_message=said, method=method, url=url, attempts=attempt)
        if status == 401:
            return ArenaAuthError(f"{head}. The server refused the {self.role} token {_redact(self.token)}: use the "
                                  f"{self._token_hint()} (a revoked token stays refused)", **kw)
        if status == 403:
            return ArenaForbidden(head, **kw)  # the server says why: paused, completed, over, or the wrong token
        if status == 404:
            return ArenaNotFound(f"{head}. Unknown path or id: check the id, and that {self.api_url} is the server's "
                                 "base URL (without /api/arena)", **kw)
        if status == 429:
            return ArenaThrottled(f"{head}{tries}: the server is throttling; wait and retry later", **kw)
        if status >= 500:
            maybe = "" if idempotent else (" The request may have been applied: check decisions() (or clock()) "
                                           "before sending it again.")
            return ArenaServerError(f"{head}{tries}: a server error.{maybe}", **kw)
        return ArenaBadRequest(f"{head}: the request was refused and nothing changed", **kw)

    def _token_hint(self) -> str:
        return "strategy token of your variant from the experiment manifest (the admin token is not a variant's)"

    def _unreachable(self, method: str, url: str, reason: Any, attempt: int, *, sent: bool,
                     idempotent: bool = True) -> ArenaConnectionError:
        what = type(reason).__name__ if not isinstance(reason, str) else "error"
        text = str(reason) or what
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        if not sent:
            msg = f"{method} {url}: cannot reach the arena server at {self.api_url}{tries} ({text}); {SERVE_HINT}"
        else:
            msg = (f"{method} {url}: the connection to {self.api_url} failed after the request was sent{tries} "
                   f"({what}: {text}; timeout {self.timeout:g} s)")
            if not idempotent:
                msg += ". The request may have been applied: check decisions() (or clock()) before sending it again"
        return ArenaConnectionError(msg, method=method, url=url, attempts=attempt)


class ArenaClient(_Http):
    """A strategy client: one variant's token (see the module docstring for errors and retries).

    Arguments: ``api_url`` (the server's base URL, e.g. ``http://127.0.0.1:7860``; paths ``/api/arena/...``
    are appended), ``token`` (the variant's strategy token), ``timeout`` (seconds per attempt, default 10),
    ``retries`` (extra attempts for transient failures, default 2), ``backoff`` (first wait, seconds, default
    1; doubled each time), ``max_backoff`` (cap, default 30 s), ``allow_http`` (plain http to a non-local
    host).
    """

    def variant(self) -> dict:
        """The variant: ``variantId``, ``variantName``, ``experimentId``, ``experimentName``,
        ``experimentStatus``, ``mode``, ``isControl``, ``currentConfig`` (the full resolved economy),
        ``lastConfigUpdate``, ``updateIntervalMin``, ``deltaLimitPct``."""
        return self._request("GET", "/api/arena/variant")

    def signals(self) -> dict:
        """The variant's signals: ``enrolled``, ``activeToday``, ``active7d``, ``totalScans``,
        ``experimentDays``, ``metrics`` {NAME: {value, stdDev, sampleSize, confidence}}."""
        return self._request("GET", "/api/arena/signals")

    def update_config(self, overrides: Mapping[str, int | float], reasoning: str = "",
                      signals: Mapping[str, Any] | None = None) -> dict:
        """Propose ``overrides`` (parameter name -> number >= 0) for the variant's economy.

        Returns the guardrails' answer, a rejection included (HTTP 200): ``accepted``, ``decisionLogId``,
        ``nextAllowedUpdate``, and ``appliedConfig`` plus (when clamped) ``clampedDeltas`` {key: {previous,
        requested, applied, clamped, deltaPercent}}, or ``rejectionReason`` (the code).  ``reasoning`` goes
        into the decision log; ``signals`` (optional) is the snapshot the decision was based on.  Raises
        ``ValueError`` for invalid overrides before sending, :class:`ArenaForbidden` when the experiment is
        paused or over.  Not retried once it may have reached the server (module docstring).
        """
        if not isinstance(reasoning, str):
            raise ValueError(f"reasoning: expected a string, got {type(reasoning).__name__}")
        body: dict[str, Any] = {"economyOverrides": check_overrides(overrides), "reasoning": reasoning}
        if signals is not None:
            if not isinstance(signals, Mapping):
                raise ValueError(f"signals: expected a mapping (the signals payload), got {type(signals).__name__}")
            body["signals"] = dict(signals)
        return self._request("PUT", "/api/arena/variant/config", body, idempotent=False)

    propose = update_config

    def heartbeat(self, poll_interval: float | None = None, metadata: Mapping[str, Any] | None = None) -> dict:
        """Tell the server the agent is alive; ``poll_interval`` (seconds) is the ``requestedPollInterval``: the
        server reports a heartbeat timeout after 3 of them without a heartbeat."""
        body: dict[str, Any] = {}
        if poll_interval is not None:
            if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) \
                    or not 1 <= poll_interval <= 86_400:
                raise ValueError(f"poll_interval: expected seconds from 1 to 86400 (the server's range), got "
                                 f"{poll_interval!r}")
            body["requestedPollInterval"] = poll_interval
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._request("POST", "/api/arena/heartbeat", body)

    def scoreboard(self) -> list[dict]:
        """Every variant of the experiment (the control included): ``variantId``, ``variantName``,
        ``isControl``, ``currentConfig``, ``lastConfigUpdate``, ``lastHeartbeat``, ``metrics``,
        ``enrolledCount``, ``activeCount``, ``totalDecisions``."""
        data = self._request("GET", "/api/arena/scoreboard")
        return list(data.get("variants", [])) if isinstance(data, Mapping) else list(data)

    def decisions(self, page: int = 1, page_size: int = 20) -> dict:
        """One page of the variant's decision log, newest first: ``decisions`` (accepted items with
        ``appliedConfig`` and ``clampedDeltas``, rejected ones with ``rejectionReason`` and ``rejectionCode``),
        ``total``, ``page``, ``pageSize``."""
        for name, x in (("page", page), ("page_size", page_size)):
            if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {x!r}")
        return self._request("GET", "/api/arena/decisions", query={"page": page, "pageSize": page_size})

    def iter_decisions(self, page_size: int = 100) -> Iterator[dict]:
        """Every decision of the variant, newest first, fetching page after page until ``total`` is reached (a
        decision made meanwhile shifts the pages: the iteration then repeats an item rather than skipping one)."""
        page, seen = 1, 0
        while True:
            data = self.decisions(page, page_size)
            items = data.get("decisions", [])
            yield from items
            seen += len(items)
            if not items or seen >= int(data.get("total", 0)):
                return
            page += 1

    def register_webhook(self, url: str, events: list[str] | None = None) -> dict:
        """Subscribe ``url`` to the variant's ``events`` (default: config_updated, heartbeat_timeout,
        circuit_breaker_triggered, anomaly_detected); returns ``webhookId``, ``url``, ``events``."""
        if not isinstance(url, str) or not url:
            raise ValueError(f"url: expected the receiver's URL, got {url!r}")
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        return self._request("POST", "/api/arena/webhooks", body, idempotent=False)

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove one of the variant's webhooks (:class:`ArenaNotFound` for an unknown id)."""
        if not isinstance(webhook_id, str) or not webhook_id:
            raise ValueError(f"webhook_id: expected the id register_webhook returned, got {webhook_id!r}")
        self._request("DELETE", "/api/arena/webhooks/" + urllib.parse.quote(webhook_id, safe=""))


class AdminClient(_Http):
    """The researcher's client of our sandbox (``/api/admin/...``, the admin token of the manifest); same
    arguments, errors and retries as :class:`ArenaClient`.  Lifecycle calls answer the clock state."""

    role = "admin"

    def _token_hint(self) -> str:
        return "admin token from the experiment manifest (adminToken), not a strategy token"

    def pause(self) -> dict:
        """RUNNING -> PAUSED (proposals get 403 meanwhile; users keep going).  Returns the clock state."""
        return self._request("POST", "/api/admin/pause", idempotent=False)

    def resume(self) -> dict:
        """PAUSED -> RUNNING.  Returns the clock state."""
        return self._request("POST", "/api/admin/resume", idempotent=False)

    def complete(self) -> dict:
        """RUNNING or PAUSED -> COMPLETED (the end: no more proposals).  Returns the clock state."""
        return self._request("POST", "/api/admin/complete", idempotent=False)

    def advance(self, minutes: float | None = None, *, days: float | None = None) -> dict:
        """Move the manual clock forward by ``minutes`` or ``days`` (exactly one, > 0); every day boundary
        crossed is simulated.  Returns the clock state."""
        if (minutes is None) == (days is None):
            raise ValueError("advance: give exactly one of minutes or days")
        key, value = ("minutes", minutes) if minutes is not None else ("days", days)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"advance: {key} must be a finite number > 0, got {value!r}")
        return self._request("POST", "/api/admin/advance", {key: value}, idempotent=False)

    def clock(self) -> dict:
        """The clock state: ``minute``, ``day``, ``status``, ``maxDays``, ``finished``."""
        return self._request("GET", "/api/admin/clock")

    def reset_breaker(self, variant_id: str) -> dict:
        """Close the circuit breaker of ``variant_id`` (the only way it closes); ``{variantId, breakerOpen}``."""
        return self._request("POST", f"/api/admin/variants/{urllib.parse.quote(variant_id, safe='')}/reset-breaker")

    def revoke(self, variant_id: str) -> dict:
        """Revoke the strategy token of ``variant_id`` for good (it gets 401 from then on)."""
        return self._request("POST", f"/api/admin/variants/{urllib.parse.quote(variant_id, safe='')}/revoke")
