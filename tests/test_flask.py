"""Flask specifics: config flags change nothing, blueprints, get_json's 415 and 400,
werkzeug's aborts, redirects left alone, CORS."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Blueprint, Flask, abort, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import TooManyRequests, Unauthorized
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import FileWrapper

from restfault import ConflictResourceException, NotFoundException
from restfault.flask import RestFault
from tests.harness import FakeClock, Reply


def flask_app(*, config: dict[str, Any] | None = None, **options: Any) -> tuple[Flask, RestFault]:
    """A Flask app with restfault installed: ``(app, restfault)``; add views to it."""
    app = Flask("restfault_tests")
    app.config.update(config or {})
    return app, RestFault(app, **options)


def add_views(app: Flask) -> None:
    @app.get("/rest")
    def rest() -> ResponseReturnValue:
        raise NotFoundException("Record 7 not found", code="RECORD_NOT_FOUND")

    @app.get("/crash")
    def crash() -> ResponseReturnValue:
        raise RuntimeError("password=hunter2")

    @app.get("/abort")
    def aborted() -> ResponseReturnValue:
        raise Unauthorized("Token expired", www_authenticate=WWWAuthenticate("bearer"))

    @app.post("/json")
    def json_body() -> ResponseReturnValue:
        return jsonify(request.get_json())

    @app.post("/form")
    def form() -> ResponseReturnValue:
        return jsonify(request.form["missing"])

    @app.get("/slash/")
    def slash() -> ResponseReturnValue:
        return jsonify({"slash": True})


SCENARIOS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/rest", {}),
    ("GET", "/crash", {}),
    ("GET", "/abort", {}),
    ("GET", "/nowhere", {}),
    ("DELETE", "/rest", {}),
    ("POST", "/json", {"data": b"{nope", "content_type": "application/json"}),
    ("POST", "/json", {"data": b"{}", "content_type": "text/plain"}),
    ("POST", "/json", {"data": b"[" * 20_000, "content_type": "application/json"}),
    ("POST", "/form", {"data": {"present": "1"}}),
]
SCENARIO_IDS = [
    "rest",
    "crash",
    "abort",
    "404",
    "405",
    "json-400",
    "json-415",
    "json-deep",
    "form-key",
]
STATUSES = dict(
    zip(SCENARIO_IDS, [404, 500, 401, 404, 405, 400, 415, 400, 400], strict=True)
)  # test_scenarios_answer_as_expected says which body goes with each
FLAGS = ("TESTING", "DEBUG", "PROPAGATE_EXCEPTIONS")
CONFIGS = [
    dict(zip(FLAGS, values, strict=True)) for values in itertools.product((False, True), repeat=3)
]


def call(app: Flask, method: str, path: str, **kwargs: Any) -> Reply:
    """One request through Flask's own test client."""
    response = app.test_client().open(path, method=method, **kwargs)
    return Reply(response.status_code, httpx.Headers(list(response.headers.items())), response.data)


def baseline(method: str, path: str, kwargs: dict[str, Any]) -> Reply:
    app = Flask("baseline")
    add_views(app)
    RestFault(app, style="bkend")
    return call(app, method, path, **kwargs)


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: "-".join(k for k, v in c.items() if v) or "none"
)
@pytest.mark.parametrize(
    ("scenario", "method", "path", "kwargs"),
    [(i, *s) for i, s in zip(SCENARIO_IDS, SCENARIOS, strict=True)],
    ids=SCENARIO_IDS,
)
def test_config_flags_change_nothing(
    config: dict[str, bool], scenario: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    app, _ = flask_app(config=config, style="bkend")
    add_views(app)

    reply = call(app, method, path, **kwargs)
    expected = baseline(method, path, kwargs)

    assert reply.status == expected.status == STATUSES[scenario]
    assert reply.json() == expected.json()
    assert reply.content_type == "application/json"
    assert reply.headers.get("allow") == expected.headers.get("allow")
    assert reply.headers.get("www-authenticate") == expected.headers.get("www-authenticate")


def test_scenarios_answer_as_expected() -> None:
    answers = {
        scenario_id: baseline(method, path, kwargs)
        for scenario_id, (method, path, kwargs) in zip(SCENARIO_IDS, SCENARIOS, strict=True)
    }
    assert answers["rest"].json() == {"error": "RECORD_NOT_FOUND", "message": "Record 7 not found"}
    assert answers["crash"].status == 500
    assert answers["crash"].json() == {
        "error": "INTERNAL_SERVER_ERROR",
        "message": "Internal Server Error",
    }
    assert answers["abort"].status == 401
    assert answers["abort"].json() == {"error": "UNAUTHORIZED", "message": "Token expired"}
    assert answers["abort"].headers["www-authenticate"].lower().startswith("bearer")
    assert answers["404"].json()["error"] == "NOT_FOUND"
    assert answers["405"].json()["error"] == "METHOD_NOT_ALLOWED"
    assert answers["405"].headers["allow"] == "GET, HEAD, OPTIONS"
    assert answers["json-400"].json()["error"] == "INVALID_JSON"
    assert answers["json-415"].status == 415
    assert answers["json-415"].json()["error"] == "UNSUPPORTED_MEDIA_TYPE"
    assert answers["json-deep"].json()["error"] == "INVALID_JSON"
    assert answers["form-key"].status == 400
    assert answers["form-key"].json()["error"] == "BAD_REQUEST"


@pytest.mark.parametrize("trap", [False, True])
def test_redirects_stay_redirects(trap: bool) -> None:
    app, _ = flask_app(config={"TRAP_HTTP_EXCEPTIONS": trap})
    add_views(app)

    reply = call(app, "GET", "/slash")

    assert reply.status == 308
    assert reply.headers["location"].endswith("/slash/")


@pytest.mark.parametrize("trap", [False, True])
@pytest.mark.parametrize("convert", [True, False])
def test_abort_with_a_response(trap: bool, convert: bool) -> None:
    """A text error response becomes the envelope (status kept), as in every adapter;
    ``convert_error_responses=False`` keeps it as the view made it."""
    from flask import Response

    app, _ = flask_app(config={"TRAP_HTTP_EXCEPTIONS": trap}, convert_error_responses=convert)

    @app.get("/own")
    def own() -> ResponseReturnValue:
        abort(Response("custom", status=402, mimetype="text/plain"))

    reply = call(app, "GET", "/own")
    if convert:
        assert reply.status == 402
        assert reply.json() == {"error": {"code": 402, "message": "Payment Required"}}
    else:
        assert (reply.status, reply.body) == (402, b"custom")


def test_trapped_http_exceptions_are_envelopes() -> None:
    app, _ = flask_app(config={"TRAP_HTTP_EXCEPTIONS": True}, style="bkend")
    add_views(app)
    assert call(app, "GET", "/nowhere").json()["error"] == "NOT_FOUND"
    reply = call(app, "GET", "/abort")
    assert (reply.status, reply.json()) == (
        401,
        {"error": "UNAUTHORIZED", "message": "Token expired"},
    )


def test_werkzeug_retry_after_is_kept() -> None:
    app, _ = flask_app(style="bkend")

    @app.get("/busy")
    def busy() -> ResponseReturnValue:
        raise TooManyRequests(retry_after=17)

    @app.get("/abort-busy")
    def abort_busy() -> ResponseReturnValue:
        abort(503, "Down for maintenance")

    reply = call(app, "GET", "/busy")
    assert reply.status == 429
    assert reply.headers["retry-after"] == "17"
    assert reply.json()["error"] == "RATE_LIMIT_EXCEEDED"
    reply = call(app, "GET", "/abort-busy")
    assert reply.json() == {"error": "SERVICE_UNAVAILABLE", "message": "Down for maintenance"}


def test_get_json_variants() -> None:
    app, _ = flask_app(style="bkend")

    @app.post("/silent")
    def silent() -> ResponseReturnValue:
        return jsonify({"got": request.get_json(silent=True)})

    @app.post("/property")
    def prop() -> ResponseReturnValue:
        return jsonify({"got": request.json})

    @app.post("/forced")
    def forced() -> ResponseReturnValue:
        return jsonify({"got": request.get_json(force=True)})

    assert call(app, "POST", "/silent", data=b"{nope", content_type="application/json").json() == {
        "got": None
    }
    reply = call(app, "POST", "/property", data=b"{nope", content_type="application/json")
    assert (reply.status, reply.json()["error"]) == (400, "INVALID_JSON")
    reply = call(app, "POST", "/property", data=b"{}", content_type="text/plain")
    assert (reply.status, reply.json()["error"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    reply = call(app, "POST", "/forced", data=b'{"a": "\xff"}', content_type="text/plain")
    assert (reply.status, reply.json()["error"]) == (400, "INVALID_JSON")
    reply = call(app, "POST", "/forced", data=b'{"a": 1}', content_type="text/plain")
    assert reply.json() == {"got": {"a": 1}}


# -- blueprints ------------------------------------------------------------------------------


def test_blueprints() -> None:
    app, _ = flask_app(style="bkend")
    api = Blueprint("api", __name__, url_prefix="/api")
    v2 = Blueprint("v2", __name__, url_prefix="/v2")

    @api.get("/conflict")
    def conflict() -> ResponseReturnValue:
        raise ConflictResourceException(code="UNIQUE_CONSTRAINT")

    @api.get("/crash")
    def crash() -> ResponseReturnValue:
        raise ValueError("internal detail")

    @v2.get("/missing")
    def missing() -> ResponseReturnValue:
        abort(404, "No v2 record")

    api.register_blueprint(v2)
    app.register_blueprint(api)

    assert call(app, "GET", "/api/conflict").json() == {
        "error": "UNIQUE_CONSTRAINT",
        "message": "Conflict",
    }
    reply = call(app, "GET", "/api/crash")
    assert reply.status == 500
    assert b"internal detail" not in reply.body
    assert call(app, "GET", "/api/v2/missing").json() == {
        "error": "NOT_FOUND",
        "message": "No v2 record",
    }
    assert call(app, "GET", "/api/nowhere").json()["error"] == "NOT_FOUND"
    assert call(app, "POST", "/api/conflict").json()["error"] == "METHOD_NOT_ALLOWED"


def test_blueprint_own_handler_is_respected() -> None:
    """A more specific handler the app registers itself still wins, as Flask promises."""
    app, _ = flask_app(style="bkend")
    bp = Blueprint("bp", __name__)

    @bp.get("/custom")
    def custom() -> ResponseReturnValue:
        raise KeyError("k")

    @bp.errorhandler(KeyError)
    def handle_key_error(exc: KeyError) -> ResponseReturnValue:
        return jsonify({"handled": "by the blueprint"}), 422

    app.register_blueprint(bp)
    reply = call(app, "GET", "/custom")
    assert (reply.status, reply.json()) == (422, {"handled": "by the blueprint"})


def test_init_app_later_and_extension_key() -> None:
    restfault = RestFault(style="bkend")
    app = Flask("later")
    add_views(app)
    restfault.init_app(app)
    assert app.extensions["restfault"] is restfault
    assert call(app, "GET", "/rest").json()["error"] == "RECORD_NOT_FOUND"


def test_one_extension_many_apps() -> None:
    restfault = RestFault(style="bkend")
    apps = [Flask(f"app{i}") for i in range(2)]
    for app in apps:
        add_views(app)
        restfault.init_app(app)
    for app in apps:
        reply = call(app, "GET", "/rest")
        assert (reply.status, reply.json()) == (
            404,
            {"error": "RECORD_NOT_FOUND", "message": "Record 7 not found"},
        )


# -- CORS ------------------------------------------------------------------------------------


def test_cors_headers_on_errors_and_429(clock: FakeClock) -> None:
    flask_cors = pytest.importorskip("flask_cors")
    app, _ = flask_app(default_limits="1/minute")
    add_views(app)
    flask_cors.CORS(app, origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}

    first = call(app, "GET", "/rest", headers=origin)
    assert first.status == 404
    assert first.headers["access-control-allow-origin"] == "https://app.example"
    limited = call(app, "GET", "/rest", headers=origin)
    assert limited.status == 429
    assert limited.headers["access-control-allow-origin"] == "https://app.example"
    assert limited.headers["retry-after"] == "60"


@pytest.mark.parametrize("hooked_first", [False, True])
def test_the_apps_own_earlier_hook_still_runs_before_the_limit(
    clock: FakeClock, hooked_first: bool
) -> None:
    """With only default limits, a request is decided before Flask runs — unless the app
    registered a before_request hook ahead of restfault's: then, as before, the hook runs
    first, and a request it answers is never counted."""
    app = Flask("restfault_tests")
    seen: list[str] = []
    if hooked_first:

        @app.before_request
        def authenticate() -> ResponseReturnValue | None:
            seen.append(request.path)
            if "X-Token" not in request.headers:
                raise Unauthorized()
            return None

    RestFault(app, default_limits="2/minute")

    @app.get("/things")
    def things() -> ResponseReturnValue:
        return {"things": []}

    anonymous = [call(app, "GET", "/things").status for _ in range(3)]
    signed = [call(app, "GET", "/things", headers={"X-Token": "t"}).status for _ in range(3)]
    if hooked_first:
        assert anonymous == [401, 401, 401]  # refused by the app's hook, never counted
        assert signed == [200, 200, 429]
        assert len(seen) == 6
    else:
        assert anonymous == [200, 200, 429]
        assert signed == [429, 429, 429]
    limited = call(app, "GET", "/things", headers={"X-Token": "t"})
    assert limited.json()["error"]["code"] == 429
    assert limited.headers["retry-after"] == "60"
    assert limited.headers["x-ratelimit-remaining"] == "0"


def test_a_file_the_server_sends_itself_is_kept_and_counted(
    clock: FakeClock, tmp_path: Path
) -> None:
    """A body made with the server's ``wsgi.file_wrapper`` is handed back as it is, so the
    server can still sendfile() it; it carries the rate-limit headers, and a ``deduct_when``
    limit counts it."""

    class ServerFileWrapper(FileWrapper):
        """What a server such as gunicorn offers in the environ."""

    report = tmp_path / "report.txt"
    report.write_bytes(b"quarterly figures")
    app, restfault = flask_app()

    @app.get("/report")
    @restfault.limit("2/minute", deduct_when=lambda status: status < 400)
    def download() -> ResponseReturnValue:
        return send_file(report)

    replies: list[tuple[str, dict[str, str], bytes, bool]] = []
    started: list[tuple[str, dict[str, str]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, {k.lower(): v for k, v in headers}))
        return lambda data: None

    for _ in range(3):
        environ = EnvironBuilder(path="/report").get_environ()
        environ["wsgi.file_wrapper"] = ServerFileWrapper
        body = app(environ, start_response)
        kept = isinstance(body, ServerFileWrapper)
        try:
            content = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        replies.append((*started[-1], content, kept))

    (first, _, first_body, first_kept), second, third = replies
    assert (first, first_body, first_kept) == ("200 OK", b"quarterly figures", True)
    assert second[1]["x-ratelimit-remaining"] == "1"  # the first download was counted
    assert second[3] is True
    assert third[0] == "429 TOO MANY REQUESTS"
    assert third[3] is False
