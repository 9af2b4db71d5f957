"""Property-based fuzzing of the sandbox server from its own ``/openapi.json`` (schemathesis): for every
operation, generated requests, schema-valid (positive) and schema-invalid (negative), get no 5xx, only
documented status codes and content types, responses that match their documented schemas, and invalid
input is rejected with a 4xx, never accepted.

(schemathesis' pytest plugin does not run under pytest 9, so each operation is a parametrized test that
draws cases from the operation's own hypothesis strategy.)"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from arena_env.server.app import create_app  # noqa: E402
from arena_env.server.experiment import Experiment  # noqa: E402

EXAMPLES = 50  # per operation and mode


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    exp, tokens = Experiment.create(tmp_path_factory.mktemp("fuzz") / "exp.db", "tiny", seed=1, manual_clock=True)
    exp.advance(2 * 1440.0)
    app = create_app(exp)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = {}
    for result in schema.get_all_operations():
        op = result.ok()
        ops[op.label] = op
    yield exp, tokens, ops
    exp.store.close()


def operation_labels():
    exp, _ = Experiment.create(":memory:", "tiny", manual_clock=True)  # only to read the routes
    labels = [f"{m.upper()} {r.path}" for r in create_app(exp).routes
              if getattr(r, "include_in_schema", False) for m in sorted(r.methods)]
    exp.store.close()
    return labels


LABELS = operation_labels()


def test_every_route_is_fuzzed(served):
    assert set(served[2]) == set(LABELS) and len(LABELS) >= 13  # the 8 protocol endpoints and 5 admin routes


# negative cases need something to break: a body or a constrained query (an optional header alone gives none)
CASES = [(label, mode) for label in LABELS for mode in ("positive", "negative")
         if mode == "positive" or label.startswith(("PUT ", "POST /api/arena/", "POST /api/admin/advance"))
         or label == "GET /api/arena/decisions"]


def fuzz(op, mode: str, headers: dict, after=lambda: None, examples: int = EXAMPLES) -> None:
    strategy = op.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

    @given(data=st.data())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(data):
        data.draw(strategy).call_and_validate(headers=headers)
        after()

    run()


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_fuzz(served, label, mode):
    exp, tokens, ops = served
    token = tokens[-1] if label.split(" ")[1].startswith("/api/admin") else tokens[1]

    def after():
        if exp.status == "PAUSED":  # a generated "pause" must not starve the other operations
            exp.lifecycle("resume")

    fuzz(ops[label], mode, {"Authorization": f"Bearer {token}"}, after)


def test_the_fuzzer_finds_a_server_error_and_an_undocumented_status():
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/boom")
    def boom(n: int = 0):
        return JSONResponse({"n": n}, status_code=500 if n > 3 else 200)  # (an exception would propagate, too)

    @app.get("/teapot", responses={200: {"description": "ok"}})
    def teapot():
        return JSONResponse({}, status_code=418)

    ops = {op.ok().label: op.ok() for op in schemathesis.openapi.from_asgi("/openapi.json", app).get_all_operations()}
    from schemathesis.core.failures import ServerError
    from schemathesis.openapi.checks import UndefinedStatusCode

    with pytest.raises(BaseException) as found:
        fuzz(ops["GET /boom"], "positive", {})
    assert isinstance(found.value, ServerError) or found.group_contains(ServerError)
    with pytest.raises(BaseException) as found:
        fuzz(ops["GET /teapot"], "positive", {}, examples=5)
    assert isinstance(found.value, UndefinedStatusCode) or found.group_contains(UndefinedStatusCode)
