"""Translations: foreign exceptions → RestException, along the MRO, on every adapter."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from restfault import (
    BadRequestException,
    ConfigurationError,
    ConflictResourceException,
    NotFoundException,
    RestException,
    Translations,
    render_error,
)
from restfault._translate import to_rest_exception
from tests.conftest import FrozenTableGone, TableGone


class DomainError(Exception):
    pass


class RecordMissing(DomainError):
    pass


class DeepRecordMissing(RecordMissing):
    pass


class Other(Exception):
    pass


def to_bad_request(exc: BaseException) -> RestException:
    return BadRequestException(str(exc), code="DOMAIN_RULE")


def to_not_found(exc: BaseException) -> RestException:
    return NotFoundException(str(exc), code="RECORD_NOT_FOUND")


# -- the registry ---------------------------------------------------------------------------


def test_lookup_follows_the_mro() -> None:
    registry = Translations({DomainError: to_bad_request})

    assert registry.find(DomainError) is to_bad_request
    assert registry.find(RecordMissing) is to_bad_request
    assert registry.find(DeepRecordMissing) is to_bad_request
    assert registry.find(Other) is None

    registry.add(RecordMissing, to_not_found)  # the nearest class wins, cache or not
    assert registry.find(DomainError) is to_bad_request
    assert registry.find(RecordMissing) is to_not_found
    assert registry.find(DeepRecordMissing) is to_not_found


def test_register_decorator_returns_the_function() -> None:
    registry = Translations()
    assert not registry

    @registry.register(DomainError)
    def translate(exc: DomainError) -> RestException:
        return to_bad_request(exc)

    assert registry
    assert registry.types() == (DomainError,)
    assert callable(translate)


@pytest.mark.parametrize("exc_type", [42, "ValueError", ValueError("instance"), int])
def test_only_exception_classes_register(exc_type: Any) -> None:
    with pytest.raises(ConfigurationError):
        Translations().add(exc_type, to_bad_request)


def test_translation_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="DomainError"):
        Translations().add(DomainError, "not callable")  # type: ignore[arg-type]


def test_merged_puts_the_other_on_top() -> None:
    base = Translations({DomainError: to_bad_request, Other: to_bad_request})
    top = Translations({DomainError: to_not_found})
    merged = base.merged(top)
    assert merged.find(DomainError) is to_not_found
    assert merged.find(Other) is to_bad_request
    assert base.find(DomainError) is to_bad_request  # untouched
    assert base.merged(None).find(DomainError) is to_bad_request


def test_to_rest_exception() -> None:
    registry = Translations({DomainError: to_not_found})
    rest = NotFoundException()
    assert to_rest_exception(rest, registry) is rest

    original = RecordMissing("record 7")
    translated = to_rest_exception(original, registry)
    assert isinstance(translated, NotFoundException)
    assert translated.message == "record 7"
    assert translated.__cause__ is original

    assert to_rest_exception(Other(), registry) is None
    assert to_rest_exception(DomainError(), None) is None


def test_translation_keeps_its_own_cause() -> None:
    own_cause = LookupError("the real reason")

    def with_cause(exc: BaseException) -> RestException:
        translated = ConflictResourceException(code="UNIQUE_CONSTRAINT")
        translated.__cause__ = own_cause
        return translated

    translated = to_rest_exception(DomainError(), Translations({DomainError: with_cause}))
    assert translated is not None
    assert translated.__cause__ is own_cause


def test_non_rest_exception_result_is_a_type_error() -> None:
    registry = Translations({DomainError: lambda exc: ValueError("wrong")})
    with pytest.raises(TypeError, match="DomainError"):
        to_rest_exception(DomainError(), registry)


def test_translations_beat_framework_exceptions() -> None:
    import starlette.exceptions

    registry = Translations({starlette.exceptions.HTTPException: to_bad_request})
    translated = to_rest_exception(starlette.exceptions.HTTPException(404), registry)
    assert isinstance(translated, BadRequestException)


def test_json_errors_outside_request_parsing_are_unexpected() -> None:
    with pytest.raises(ValueError) as info:
        json.loads("{nope")
    assert to_rest_exception(info.value) is None
    assert render_error(info.value).status == 500


# -- each adapter's .translate ----------------------------------------------------------


def _starlette(make_options: dict[str, Any]) -> tuple[Any, Callable[[str], httpx.Response]]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from restfault.starlette import RestFault

    async def endpoint(request: Request) -> Any:
        raise EXCEPTIONS[request.path_params["name"]]

    app = Starlette(routes=[Route("/raise/{name}", endpoint)])
    adapter = RestFault(app, **make_options)
    client = TestClient(app, raise_server_exceptions=False)
    return adapter, client.get


def _fastapi(make_options: dict[str, Any]) -> tuple[Any, Callable[[str], httpx.Response]]:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from restfault.starlette import RestFault

    app = FastAPI()

    @app.get("/raise/{name}")
    async def endpoint(name: str) -> Any:
        raise EXCEPTIONS[name]

    adapter = RestFault(app, **make_options)
    client = TestClient(app, raise_server_exceptions=False)
    return adapter, client.get


def _flask(make_options: dict[str, Any]) -> tuple[Any, Callable[[str], Any]]:
    from flask import Flask

    from restfault.flask import RestFault

    app = Flask("translate")

    @app.get("/raise/<name>")
    def endpoint(name: str) -> Any:
        raise EXCEPTIONS[name]

    adapter = RestFault(app, **make_options)
    client = app.test_client()
    return adapter, lambda path: _as_httpx(client.get(path))


def _asgi(make_options: dict[str, Any]) -> tuple[Any, Callable[[str], httpx.Response]]:
    from starlette.testclient import TestClient

    from restfault.asgi import RestFaultMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise EXCEPTIONS[scope["path"].rsplit("/", 1)[-1]]

    adapter = RestFaultMiddleware(app, **make_options)
    client = TestClient(adapter, raise_server_exceptions=False)
    return adapter, client.get


def _wsgi(make_options: dict[str, Any]) -> tuple[Any, Callable[[str], Any]]:
    from werkzeug.test import Client

    from restfault.wsgi import RestFaultMiddleware

    def app(environ: Any, start_response: Any) -> Any:
        raise EXCEPTIONS[environ["PATH_INFO"].rsplit("/", 1)[-1]]

    adapter = RestFaultMiddleware(app, **make_options)
    client = Client(adapter)
    return adapter, lambda path: _as_httpx(client.get(path))


def _as_httpx(response: Any) -> httpx.Response:
    return httpx.Response(
        response.status_code, headers=list(response.headers.items()), content=response.data
    )


EXCEPTIONS: dict[str, BaseException] = {
    "domain": DomainError("a domain rule"),
    "missing": RecordMissing("record 7"),
    "deep": DeepRecordMissing("record 8"),
    "other": Other("other"),
}
ADAPTERS = {
    "starlette": _starlette,
    "fastapi": _fastapi,
    "flask": _flask,
    "asgi": _asgi,
    "wsgi": _wsgi,
}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ADAPTERS[request.param]  # type: ignore[no-any-return]


def test_adapter_translate_decorator(adapter: Callable[..., Any]) -> None:
    restfault, get = adapter({"style": "bkend"})

    @restfault.translate(DomainError)
    def domain(exc: DomainError) -> RestException:
        return BadRequestException(str(exc), code="DOMAIN_RULE")

    assert domain(DomainError("x")).code == "DOMAIN_RULE"  # the decorator hands it back
    reply = get("/raise/domain")
    assert reply.status_code == 400
    assert reply.json() == {"error": "DOMAIN_RULE", "message": "a domain rule"}
    # subclasses inherit the parent's translation
    assert get("/raise/deep").json() == {"error": "DOMAIN_RULE", "message": "record 8"}

    @restfault.translate(RecordMissing)
    def missing(exc: RecordMissing) -> RestException:
        return NotFoundException(str(exc), code="RECORD_NOT_FOUND")

    assert get("/raise/missing").status_code == 404
    assert get("/raise/deep").json() == {"error": "RECORD_NOT_FOUND", "message": "record 8"}
    assert get("/raise/domain").status_code == 400
    other = get("/raise/other")
    assert other.status_code == 500
    assert other.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}


def test_adapter_translation_returning_a_non_rest_exception(
    adapter: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    restfault, get = adapter({"style": "bkend"})
    restfault.translate(DomainError)(lambda exc: {"error": "a dict is not an exception"})

    reply = get("/raise/domain")

    assert reply.status_code == 500
    assert reply.json() == {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}
    assert "DomainError" in caplog.text


def test_translated_5xx_is_logged(
    adapter: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    from restfault import ServiceUnavailableException

    restfault, get = adapter({"style": "bkend"})
    restfault.translate(Other)(lambda exc: ServiceUnavailableException(retry_after=3))

    reply = get("/raise/other")

    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "3"
    assert "Other" in caplog.text


# -- the check every RestException passes ------------------------------------------------------


class Code(str, enum.Enum):
    TABLE_NOT_FOUND = "TABLE_NOT_FOUND"


def with_latin1_header() -> RestException:
    return NotFoundException(headers={"X-Name": "Grüße", "X-Tab": "a\tb"})


def with_enum_code() -> RestException:
    exc = NotFoundException()
    exc.code = Code.TABLE_NOT_FOUND
    return exc


@pytest.mark.parametrize(
    "make",
    [NotFoundException, with_latin1_header, with_enum_code, TableGone, FrozenTableGone],
    ids=["plain", "latin1-header", "str-enum-code", "dataclass", "frozen"],
)
def test_a_well_formed_exception_is_rendered_as_itself(
    make: Callable[[], RestException], caplog: pytest.LogCaptureFixture
) -> None:
    exc = make()
    assert to_rest_exception(exc) is exc
    assert caplog.records == []
