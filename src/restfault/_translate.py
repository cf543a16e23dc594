"""Foreign exceptions → RestException, at one boundary.

Three sources, tried in order:

1. a ``RestException`` is already what we want;
2. a translation registered with ``.translate(exc_type)``, found along the exception's
   ``__mro__`` so a subclass inherits its parent's mapping (as Starlette finds handlers);
3. a framework HTTP exception (Starlette's or werkzeug's), keeping status, message and
   the headers that matter. Neither framework is imported unless it is installed.

What comes out is checked once, here (``well_formed``), so that everything after
(renderer, batches, logs) reads plain, valid fields. Anything else is unexpected: ``None``
here, a bare 500 in the renderer.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from types import CodeType
from typing import Any, TypeVar

from ._errors import (
    ConfigurationError,
    InvalidJsonException,
    RestException,
    chain,
    reason_phrase,
    status_code_name,
)
from ._headers import converted_headers
from ._well_formed import well_formed

__all__ = ["Translations", "activate", "active_translations", "deactivate", "to_rest_exception"]

logger = logging.getLogger("restfault")

Translation = Callable[[Any], RestException]
E = TypeVar("E", bound=BaseException)


class Translations:
    """A registry of ``exc_type -> fn(exc) -> RestException``, looked up along the MRO."""

    __slots__ = ("_by_type", "_cache")

    def __init__(self, mapping: Mapping[type[BaseException], Translation] | None = None) -> None:
        self._by_type: dict[type[BaseException], Translation] = {}
        self._cache: dict[type[BaseException], Translation | None] = {}
        for exc_type, fn in (mapping or {}).items():
            self.add(exc_type, fn)

    def add(self, exc_type: type[BaseException], fn: Translation) -> None:
        """Register ``fn`` for ``exc_type`` and its subclasses."""
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise ConfigurationError(f"translate() takes an exception class, not {exc_type!r}")
        if not callable(fn):
            raise ConfigurationError(f"translate({exc_type.__name__}) needs a callable")
        self._by_type[exc_type] = fn
        self._cache.clear()

    def register(self, exc_type: type[E]) -> Callable[[Callable[[E], RestException]], Any]:
        """Decorator form of :meth:`add`."""

        def decorator(fn: Callable[[E], RestException]) -> Callable[[E], RestException]:
            self.add(exc_type, fn)
            return fn

        return decorator

    def find(self, exc_type: type[BaseException]) -> Translation | None:
        """The translation for ``exc_type``: its own, else its nearest base class's."""
        try:
            return self._cache[exc_type]
        except KeyError:
            pass
        found = next((self._by_type[t] for t in exc_type.__mro__ if t in self._by_type), None)
        self._cache[exc_type] = found
        return found

    def types(self) -> tuple[type[BaseException], ...]:
        """The exception types registered so far."""
        return tuple(self._by_type)

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def merged(self, other: Translations | None) -> Translations:
        """A new registry with ``other``'s entries on top of ours."""
        result = Translations(self._by_type)
        if other is not None:
            for exc_type, fn in other._by_type.items():
                result.add(exc_type, fn)
        return result


# The registry of the adapter handling the current request, so that run_batch inside a
# handler translates what the app registered without being handed the registry.
active_translations: contextvars.ContextVar[Translations | None] = contextvars.ContextVar(
    "restfault_active_translations", default=None
)
Activation = contextvars.Token[Translations | None] | None


def activate(translations: Translations) -> Activation:
    """Make ``translations`` the ones ``run_batch`` applies while a request is handled;
    undone by ``deactivate``. Nothing is set (None) when there is nothing to change:
    none registered and none active, so ``run_batch`` finds none either way."""
    if translations._by_type or active_translations.get() is not None:
        return active_translations.set(translations)
    return None


def deactivate(activation: Activation) -> None:
    if activation is not None:
        active_translations.reset(activation)


def to_rest_exception(
    exc: BaseException, translations: Translations | None = None
) -> RestException | None:
    """The RestException ``exc`` stands for, or ``None`` when it is unexpected."""
    if isinstance(exc, RestException):
        return well_formed(exc)
    invalid_json = _invalid_request_json(exc)
    if invalid_json is not None:
        return invalid_json
    if translations:
        fn = translations.find(type(exc))
        if fn is not None:
            translated = fn(exc)
            if not isinstance(translated, RestException):
                raise TypeError(
                    f"the translation for {type(exc).__name__} returned "
                    f"{type(translated).__name__}, not a RestException"
                )
            if translated.__cause__ is None:
                chain(translated, exc)
            return well_formed(translated)
    for exc_type, convert in _framework_converters():
        if isinstance(exc, exc_type):
            return convert(exc)
    return None


def http_exception(
    status: int, message: str | None, headers: Iterable[tuple[str, str]]
) -> RestException:
    """A RestException for a bare HTTP status, keeping the headers that matter."""
    if not 400 <= status <= 599:
        status = 500
    return RestException(
        message if message else reason_phrase(status),
        code=status_code_name(status),
        headers=converted_headers(status, headers),
        status_code=status,
    )


def _from_starlette(exc: Any) -> RestException:
    headers = exc.headers.items() if exc.headers else ()
    detail = exc.detail
    if detail is None or isinstance(detail, str):
        return http_exception(exc.status_code, detail, headers)
    # FastAPI's detail may be any JSON-able value: keep it as the context, not its repr.
    rest = http_exception(exc.status_code, None, headers)
    rest.context = detail
    return rest


def _from_werkzeug(exc: Any) -> RestException:
    status = exc.code if exc.code is not None else 500
    return http_exception(status, exc.description, exc.get_headers())


@cache
def _framework_converters() -> tuple[tuple[type[BaseException], Translation], ...]:
    found: list[tuple[type[BaseException], Translation]] = []
    for module_name, convert in (
        ("starlette.exceptions", _from_starlette),
        ("werkzeug.exceptions", _from_werkzeug),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append((module.HTTPException, convert))
    return tuple(found)


def _invalid_request_json(exc: BaseException) -> InvalidJsonException | None:
    """400 INVALID_JSON when ``exc`` (or what it was raised from) came out of parsing the
    request body as JSON — Starlette's ``await request.json()``, werkzeug/Flask's
    ``request.get_json()``. The same error from anything else (an upstream response, a
    file) is not the client's fault and stays unexpected.
    """
    parsers = _body_parsers()
    if not parsers:
        return None
    current: BaseException | None = exc
    for _ in range(4):
        if current is None:
            return None
        if isinstance(current, ValueError | RecursionError):
            if not _raised_in(current, parsers):
                return None
            invalid = InvalidJsonException(_invalid_json_message(current))
            invalid.__cause__ = exc
            return invalid
        # Only the framework's own 400 may stand between (werkzeug's get_json() raises a
        # BadRequest while handling the parse error, Flask another from that one): an
        # exception the app raised while handling a parse error keeps its own meaning.
        if not _is_framework_400(current):
            return None
        current = current.__cause__ or current.__context__
    return None


def _is_framework_400(exc: BaseException) -> bool:
    for exc_type, _ in _framework_converters():
        if isinstance(exc, exc_type):
            status = getattr(exc, "code", None) or getattr(exc, "status_code", None)
            return bool(status == 400)
    return False


def _invalid_json_message(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "Invalid JSON: the body is not valid UTF-8"
    if isinstance(exc, RecursionError):
        return "Invalid JSON: nested too deeply"
    return "Invalid JSON"


def _raised_in(exc: BaseException, codes: frozenset[CodeType]) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in codes:
            return True
        tb = tb.tb_next
    return False


@cache
def _body_parsers() -> frozenset[CodeType]:
    codes: set[CodeType] = set()
    for module_name, class_name, method in (
        ("starlette.requests", "Request", "json"),
        ("werkzeug.wrappers.request", "Request", "get_json"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        codes.add(getattr(getattr(module, class_name), method).__code__)
    return frozenset(codes)
