"""Translations: foreign exceptions → RestException, along the MRO, on every adapter."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest

from restfault import (
    BadRequestException,
    BatchException,
    ConfigurationError,
    ConflictResourceException,
    NotFoundException,
    RestException,
    ServiceUnavailableException,
    Translations,
    raise_single_error,
    render_error,
    run_batch,
)
from restfault._translate import to_rest_exception as translated
from tests.harness import Harness, MakeHarness, error_records, raising
from tests.tables import FrozenTableGone, TableGone

E = TypeVar("E", bound=BaseException)


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


def to_rest_exception(exc: Exception, registry: Translations | None) -> RestException | None:
    """What ``registry`` makes of ``exc``, through the public batch API: a one-item batch
    raises its item's own error; an exception no translation covers escapes unchanged."""

    def operation(item: object) -> object:
        raise exc

    with pytest.raises(Exception) as raised:
        run_batch([None], operation, translate=registry)
    if isinstance(raised.value, BatchException):
        with pytest.raises(RestException) as own:
            raise_single_error(raised.value, 1)
        return own.value
    if raised.value is exc:
        return None  # no translation covers it: it escaped unchanged
    raise raised.value


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
    # A translation that breaks its contract (type-checked code could not register it).
    wrong: Any = lambda exc: ValueError("wrong")  # noqa: E731
    registry = Translations({DomainError: wrong})
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
    assert to_rest_exception(info.value, None) is None
    assert render_error(info.value).status == 500


# -- each adapter's .translate -------------------------------------------------------------


def translate(app: Harness, exc_type: type[E], fn: Callable[[E], object]) -> Callable[[E], object]:
    """``app.restfault.translate(exc_type)(fn)``: what the decorator hands back."""
    # Some tests register a translation that breaks its contract on purpose.
    as_declared = cast("Callable[[E], RestException]", fn)
    registered: Callable[[E], object] = app.restfault.translate(exc_type)(as_declared)
    return registered


def raising_app(harness: MakeHarness) -> Harness:
    app = harness(style="bkend")
    for name, exc in EXCEPTIONS.items():
        app.route(f"/raise/{name}")(raising(exc))
    app.build()  # translations registered after the app is built apply too
    return app


EXCEPTIONS: dict[str, BaseException] = {
    "domain": DomainError("a domain rule"),
    "missing": RecordMissing("record 7"),
    "deep": DeepRecordMissing("record 8"),
    "other": Other("other"),
}
INTERNAL = {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"}


def test_adapter_translate_decorator_and_mro(harness: MakeHarness) -> None:
    app = raising_app(harness)

    def domain(exc: DomainError) -> RestException:
        return BadRequestException(str(exc), code="DOMAIN_RULE")

    assert translate(app, DomainError, domain) is domain  # the decorator hands it back
    reply = app.get("/raise/domain")
    assert reply.status == 400
    assert reply.json() == {"error": "DOMAIN_RULE", "message": "a domain rule"}
    # subclasses inherit the parent's translation ...
    reply = app.get("/raise/missing")
    assert (reply.status, reply.json()) == (400, {"error": "DOMAIN_RULE", "message": "record 7"})
    assert app.get("/raise/deep").json() == {"error": "DOMAIN_RULE", "message": "record 8"}

    # ... until they get one of their own.
    def missing(exc: RecordMissing) -> RestException:
        return NotFoundException(str(exc), code="RECORD_NOT_FOUND")

    translate(app, RecordMissing, missing)
    reply = app.get("/raise/missing")
    assert reply.status == 404
    assert reply.json() == {"error": "RECORD_NOT_FOUND", "message": "record 7"}
    assert app.get("/raise/deep").json() == {"error": "RECORD_NOT_FOUND", "message": "record 8"}
    reply = app.get("/raise/domain")
    assert (reply.status, reply.json()["error"]) == (400, "DOMAIN_RULE")
    other = app.get("/raise/other")
    assert other.status == 500
    assert other.json() == INTERNAL


@pytest.mark.parametrize(
    "result",
    [ValueError("not a RestException"), {"error": "a dict is not an exception"}],
    ids=["exception", "dict"],
)
def test_adapter_translation_returning_a_non_rest_exception_is_a_500(
    harness: MakeHarness, result: object, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = raising_app(harness)
    translate(app, DomainError, lambda exc: result)

    reply = app.get("/raise/domain")

    assert reply.status == 500
    assert reply.json() == INTERNAL
    assert "DomainError" in restfault_log.text
    assert error_records(restfault_log)


def test_adapter_translation_that_raises_is_a_500(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = raising_app(harness)

    def broken(exc: DomainError) -> RestException:
        raise LookupError("the translation itself is broken")

    translate(app, DomainError, broken)

    reply = app.get("/raise/domain")

    assert reply.status == 500
    assert reply.json() == INTERNAL
    assert b"broken" not in reply.body


def test_translated_5xx_is_logged(
    harness: MakeHarness, restfault_log: pytest.LogCaptureFixture
) -> None:
    app = raising_app(harness)
    translate(app, Other, lambda exc: ServiceUnavailableException(retry_after=3))

    reply = app.get("/raise/other")

    assert reply.status == 503
    assert reply.headers["retry-after"] == "3"
    assert reply.json() == {"error": "SERVICE_UNAVAILABLE", "message": "Service Unavailable"}
    assert "Other" in restfault_log.text


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
    assert translated(exc) is exc
    assert caplog.records == []
