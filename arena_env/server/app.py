"""The HTTP app: the TendedLoop Arena protocol's 8 endpoints over an :class:`~.experiment.Experiment`,
plus researcher (admin) endpoints.

Every response is an envelope, ``{"success": true, "data": ...}`` or ``{"success": false, "error":
"<message>"}``; fields are camelCase.  Status codes: 200 (guardrail rejections too, with
``accepted: false``), 400 malformed input (bad JSON, a non-number, a boolean or negative value, an
unknown key or query parameter, a body where the endpoint takes none, bad pagination, a body that is not
``application/json``), 401 missing, unknown or revoked token, 403 the experiment is paused or
completed (agents stop there) or the caller is not the admin, 404 unknown path or id, 405 wrong
method, 413 a body over 64 KiB.  Request models are strict (pydantic's lax mode would turn ``false``
into ``0.0``), so every value is exactly what the agent sent or the request is refused.

Agent endpoints (``Authorization: Bearer <strategy token>``, one variant each):

====================================  ====================================================
``GET /api/arena/variant``            the variant, its config and the guardrail settings
``GET /api/arena/signals``            its metrics (``{value, stdDev, sampleSize, confidence}``)
``PUT /api/arena/variant/config``     ``{economyOverrides, reasoning?, signals?}``: a proposal
``POST /api/arena/heartbeat``         ``{requestedPollInterval?, metadata?}``
``GET /api/arena/scoreboard``         every variant
``GET /api/arena/decisions``          its decisions, newest first (``page``, ``pageSize``)
``POST /api/arena/webhooks``          ``{url, events?}``
``DELETE /api/arena/webhooks/{id}``   remove one of its webhooks
====================================  ====================================================

Admin endpoints (``Authorization: Bearer <admin token>``): ``POST /api/admin/pause``, ``/resume``,
``/complete``, ``POST /api/admin/advance`` ``{minutes}`` or ``{days}`` (the manual clock),
``POST /api/admin/variants/{variantId}/reset-breaker``, ``POST /api/admin/variants/{variantId}/revoke``,
``GET /api/admin/clock``.
"""


import contextlib
import gc
import json
import math
import threading
from typing import Annotated, Any, Literal

from arena_env.economy.params import PARAM_NAMES

from .experiment import LIFECYCLE_ACTIONS, AuthError, Experiment, Forbidden

MAX_BODY = 64 * 1024
PAGE_SIZE_MAX = 100
MAX_VALUE = 10**12  # the largest parameter value a proposal may request (the guardrails' bounds clamp far below)
MAX_ADVANCE_DAYS = 10**6  # the longest manual-clock advance (past the experiment's end it stops at the end)


def create_app(exp: Experiment, *, webhooks=None, tick_seconds: float = 1.0, freeze_gc: bool = False):
    """The FastAPI app of ``exp``; ``webhooks`` is a :class:`~.webhooks.WebhookDispatcher` (or None).

    ``freeze_gc`` (what ``python -m arena_env serve`` passes, a process of its own): at start-up and after
    the first simulated day, :func:`gc.freeze` what is loaded by then (the simulator, the framework), which
    lives as long as the server; full collections over it took 25-100 ms under load and stalled every
    request.  It changes the whole process's collector, so an app embedded in another process leaves it off."""
    from fastapi import Depends, FastAPI, Header, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def num(**bounds):  # a JSON number within bounds, the bounds on each branch so the schema documents them
        return Annotated[StrictInt, Field(**bounds)] | Annotated[StrictFloat, Field(**bounds)]

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

    class ConfigUpdate(Strict):
        # the key rule is ours (a clear message names the parameters); the schema documents it for clients
        economyOverrides: dict[StrictStr, num(ge=0, le=MAX_VALUE)] = Field(
            min_length=1, json_schema_extra={"propertyNames": {"enum": list(PARAM_NAMES)}})
        reasoning: StrictStr = Field(default="", max_length=4000)
        signals: dict[StrictStr, Any] | None = None

    class Heartbeat(Strict):
        requestedPollInterval: num(ge=1, le=86_400) | None = None
        metadata: dict[StrictStr, Any] | None = None

    class WebhookIn(Strict):
        url: StrictStr = Field(max_length=2000)
        events: list[StrictStr] | None = None

    class Advance(Strict):
        model_config = ConfigDict(extra="forbid", strict=True,
                                  json_schema_extra={"minProperties": 1, "maxProperties": 1})  # exactly one
        minutes: num(gt=0, le=MAX_ADVANCE_DAYS * 1440) = None
        days: num(gt=0, le=MAX_ADVANCE_DAYS) = None

    def ok(data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"success": True, "data": data}, status_code=status)

    def fail(status: int, message: str) -> JSONResponse:
        return JSONResponse({"success": False, "error": message}, status_code=status)

    class OkEnvelope(BaseModel):
        success: Literal[True]
        data: Any

    class ErrorEnvelope(BaseModel):
        success: Literal[False]
        error: str

    def err(text: str) -> dict:
        return {"model": ErrorEnvelope, "description": text}

    codes = {200: {"model": OkEnvelope, "description": "success envelope (guardrail rejections too)"},
             400: err("malformed input: bad JSON, a wrong type, a value out of range, an unknown key"),
             401: err("missing, unknown or revoked token"),
             403: err("the experiment is paused or completed, or the token may not do this"),
             404: err("unknown path or id"), 413: err(f"a body over {MAX_BODY} bytes")}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        # the wall clock advances the simulation, and silent agents are reported, even when nobody calls
        stop = threading.Event()

        def ticker():
            refreeze_after = exp.env.day if freeze_gc else None
            while not stop.wait(tick_seconds):
                try:
                    exp.sync()
                except Exception:  # noqa: BLE001 - requests report problems; the ticker keeps going
                    pass
                if refreeze_after is not None and exp.env.day > refreeze_after:
                    refreeze_after = None  # the first day simulated here loaded the kernels a day needs: freeze them too
                    gc.collect()
                    gc.freeze()

        threading.Thread(target=ticker, name="arena-clock", daemon=True).start()  # the heartbeat check, too
        if freeze_gc:
            gc.collect()
            gc.freeze()
        yield
        stop.set()

    async def strict_request(request: Request) -> None:
        """400 for what FastAPI would ignore: a query parameter the endpoint does not take, or a body (other
        than an empty one or ``{}``) sent to an endpoint that takes none."""
        dep = getattr(request.scope.get("route"), "dependant", None)
        if dep is None:
            return
        allowed = sorted(p.alias for p in dep.query_params)
        extra = sorted(set(request.query_params) - set(allowed))
        if extra:
            raise ValueError(f"unknown query parameter {extra[0]!r}; this endpoint takes "
                             f"{', '.join(allowed) if allowed else 'none'}")
        if not dep.body_params and request.method in ("POST", "PUT", "DELETE"):
            body = (await request.body()).strip()
            try:
                empty = not body or json.loads(body) == {}
            except ValueError:
                empty = False
            if not empty:
                raise ValueError(f"{request.method} {request.url.path} takes no body; send none (or {{}})")

    app = FastAPI(title="arena sandbox", version="1", description=__doc__.split("\n\n")[0], responses=codes,
                  lifespan=lifespan, dependencies=[Depends(strict_request)])
    app.state.experiment = exp

    @app.exception_handler(RequestValidationError)
    async def invalid(req, exc: RequestValidationError):
        parts = []
        kind = req.headers.get("content-type", "")
        if "json" not in kind.lower() and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
            return fail(400, f"body: send JSON with the header Content-Type: application/json (got "
                             f"{kind or 'no Content-Type'})")
        for e in exc.errors()[:5]:
            if e.get("type") == "json_invalid":
                parts.append(f"malformed JSON: {e.get('ctx', {}).get('error', 'cannot parse the body')}")
                continue
            loc = [str(x) for x in e.get("loc", ()) if x != "body" and not isinstance(x, int)]
            if loc and loc[-1] in ("int", "float", "constrained-int", "constrained-float"):  # a union's branch: name the field, not the branch
                loc = loc[:-1]
            parts.append(f"{'.'.join(loc) or 'body'}: {e.get('msg', 'invalid')}")
        parts = list(dict.fromkeys(parts))
        return fail(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(req, exc: StarletteHTTPException):
        if exc.status_code == 404 and exc.detail == "Not Found":  # no route: say which path (docs/server.md)
            return fail(404, f"unknown path {req.url.path} (the endpoints are listed in /openapi.json)")
        return fail(exc.status_code, str(exc.detail))

    @app.exception_handler(AuthError)
    async def auth_error(_req, exc: AuthError):
        return fail(401, str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(_req, exc: Forbidden):
        return fail(403, str(exc))

    @app.exception_handler(ValueError)
    async def value_error(_req, exc: ValueError):
        return fail(400, str(exc))

    @app.exception_handler(KeyError)
    async def key_error(_req, exc: KeyError):
        return fail(404, str(exc.args[0]) if exc.args else "not found")

    class LimitBody:
        """413 for a body over MAX_BODY: a declared Content-Length, or a chunked PUT/POST read up to the limit.
        A plain ASGI middleware: ``@app.middleware("http")`` (BaseHTTPMiddleware) cost ~0.3 ms of CPU per request."""

        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            size = chunked = None
            for k, v in scope["headers"]:  # the first of each, as Request.headers.get
                if k == b"content-length" and size is None:
                    size = v.decode("latin-1")
                elif k == b"transfer-encoding" and chunked is None:
                    chunked = v
            too_big = fail(413, f"request body over {MAX_BODY} bytes")
            if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
                return await too_big(scope, receive, send)
            if scope["method"] in ("PUT", "POST") and size is None and chunked:
                messages, n = [], 0
                while True:
                    m = await receive()
                    messages.append(m)
                    n += len(m.get("body", b""))
                    if n > MAX_BODY:
                        return await too_big(scope, receive, send)
                    if m["type"] != "http.request" or not m.get("more_body", False):
                        break

                async def replay():
                    return messages.pop(0) if messages else await receive()

                return await self.inner(scope, replay, send)
            return await self.inner(scope, receive, send)

    app.add_middleware(LimitBody)

    Auth = Annotated[str | None, Header(alias="Authorization", description="Bearer <strategy token>")]

    def agent(authorization: str | None) -> int:
        exp.sync()
        caller = exp.authenticate(authorization)
        if caller.variant < 0:
            raise Forbidden("the admin token is not a variant's token: use a strategy token")
        return caller.variant

    def admin(authorization: str | None) -> None:
        exp.sync()
        if exp.authenticate(authorization).variant != -1:
            raise Forbidden("researcher endpoints need the admin token")

    # ------------------------------------------------------------------ the protocol
    @app.get("/api/arena/variant")
    def get_variant(authorization: Auth = None):
        return ok(exp.variant(agent(authorization)))

    @app.get("/api/arena/signals")
    def get_signals(authorization: Auth = None):
        return ok(exp.signals(agent(authorization)))

    @app.put("/api/arena/variant/config")
    def put_config(body: ConfigUpdate, authorization: Auth = None):
        v = agent(authorization)
        bad = [k for k, x in body.economyOverrides.items() if not math.isfinite(float(x)) or x < 0]
        if bad:
            raise ValueError(f"economyOverrides.{bad[0]}: expected a finite number >= 0, got "
                             f"{body.economyOverrides[bad[0]]!r}")
        return ok(exp.propose(v, body.economyOverrides, body.reasoning))

    @app.post("/api/arena/heartbeat")
    def post_heartbeat(body: Heartbeat | None = None, authorization: Auth = None):
        v = agent(authorization)
        body = body or Heartbeat()
        return ok(exp.heartbeat(v, body.requestedPollInterval, body.metadata))

    @app.get("/api/arena/scoreboard")
    def get_scoreboard(authorization: Auth = None):
        agent(authorization)
        return ok(exp.scoreboard())

    @app.get("/api/arena/decisions")
    def get_decisions(authorization: Auth = None, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                      pageSize: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = 20):
        return ok(exp.decisions(agent(authorization), page, pageSize))

    @app.post("/api/arena/webhooks")
    def post_webhook(body: WebhookIn, authorization: Auth = None):
        v = agent(authorization)
        if webhooks is None:
            raise Forbidden("webhooks are not enabled on this server")
        return ok(webhooks.register(v, body.url, body.events))

    @app.delete("/api/arena/webhooks/{webhook_id}")
    def delete_webhook(webhook_id: str, authorization: Auth = None):
        v = agent(authorization)
        if webhooks is None or not webhooks.unregister(v, webhook_id):
            raise KeyError(f"no webhook {webhook_id!r} of this variant")
        return ok({})

    # ------------------------------------------------------------------ researcher endpoints
    @app.post("/api/admin/advance")
    def post_advance(body: Advance, authorization: Auth = None):
        admin(authorization)
        if (body.minutes is None) == (body.days is None):
            raise ValueError("give exactly one of minutes or days")
        minutes = float(body.minutes) if body.minutes is not None else float(body.days) * 1440.0
        return ok(exp.advance(minutes))

    @app.get("/api/admin/clock")
    def get_clock(authorization: Auth = None):
        admin(authorization)
        return ok(exp.clock_state())

    def lifecycle_endpoint(action: str) -> None:  # one route per action, so other paths get 404 and 405 right
        def post_lifecycle(authorization: Auth = None):
            admin(authorization)
            return ok(exp.lifecycle(action))

        app.post(f"/api/admin/{action}", name=f"post_{action}")(post_lifecycle)

    for action in LIFECYCLE_ACTIONS:
        lifecycle_endpoint(action)

    @app.post("/api/admin/variants/{variant_id}/reset-breaker")
    def post_reset_breaker(variant_id: str, authorization: Auth = None):
        admin(authorization)
        return ok(exp.reset_breaker(exp.variant_index(variant_id)))

    @app.post("/api/admin/variants/{variant_id}/revoke")
    def post_revoke(variant_id: str, authorization: Auth = None):
        admin(authorization)
        return ok(exp.revoke(exp.variant_index(variant_id)))

    from .live import mount_live

    mount_live(app, exp)  # the live scoreboard at / (admin token): docs/server.md

    def openapi():  # validation errors are 400 here (the handler above), not FastAPI's default 422
        if app.openapi_schema is None:
            spec = FastAPI.openapi(app)
            for ops in spec["paths"].values():
                for op in ops.values():
                    op["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                spec.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
    return app
