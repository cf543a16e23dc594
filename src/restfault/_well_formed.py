"""The check every RestException passes before anything reads its fields."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._errors import RestException, chain, reason_phrase, status_code_name
from ._headers import check_header_name, header_field

__all__ = ["well_formed"]

logger = logging.getLogger("restfault")

_UNREADABLE = object()


def well_formed(exc: RestException) -> RestException | None:
    """``exc`` itself when an envelope can be made of its fields as they are.

    Otherwise the app's exception class has a bug (a property that raises, a code that is
    no str, a header mutated into an int after construction...): logged at ERROR, and
    answered with a plain RestException holding what could be used, the rest defaulted
    from the status — or ``None`` (an unexpected error, a 500) when it has no error status.
    """
    try:
        status, code, message, headers = exc.status_code, exc.code, exc.message, exc.headers
        exc.context  # noqa: B018 - only whether it can be read
    except Exception:
        return _mended(exc)
    if (
        type(status) is int
        and 400 <= status <= 599
        and isinstance(code, str)
        and isinstance(message, str)
        and isinstance(headers, dict)
        and (not headers or _sendable(headers))
    ):
        return exc
    return _mended(exc)


def _sendable(headers: Any) -> bool:
    """A quick check that ``header_field`` would leave every header as it is: printable
    ASCII values only (anything else is for ``_mended`` to decide)."""
    try:
        for name, value in headers.items():
            if type(value) is not str or not (value.isascii() and value.isprintable()):
                return False
            check_header_name(name)
    except Exception:
        return False
    return True


def _mended(exc: RestException) -> RestException | None:
    """What ``well_formed`` answers for an exception it cannot use as it is."""
    problems: list[str] = []
    failure: BaseException | None = None

    def read(name: str) -> Any:
        nonlocal failure
        try:
            return getattr(exc, name)
        except Exception as error:
            problems.append(f"reading {name} raised {type(error).__name__}")
            failure = failure or error
            return _UNREADABLE

    status = read("status_code")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        if status is not _UNREADABLE:
            problems.append(f"status_code is {status!r}, not an int from 400 to 599")
        logger.error(
            "restfault: %s is answered as an unexpected error: %s",
            type(exc).__name__,
            "; ".join(problems),
            exc_info=failure,
        )
        return None
    code, message, context, headers = map(read, ("code", "message", "context", "headers"))
    if not isinstance(code, str):
        if code is not _UNREADABLE:
            problems.append(f"code is {type(code).__name__}, not str")
        code = status_code_name(status)
    if not isinstance(message, str):
        if message is not _UNREADABLE:
            problems.append(f"message is {type(message).__name__}, not str")
        message = reason_phrase(status)
    if context is _UNREADABLE:
        context = None
    fields = _usable_headers(headers, problems)
    if not problems:  # only _sendable's quick check said no (a Latin-1 value, a str subclass)
        return exc
    logger.error(
        "restfault: %s is not a well-formed RestException (%s); answered %d with what "
        "could be used",
        type(exc).__name__,
        "; ".join(problems),
        status,
        exc_info=failure,
    )
    mended = RestException(message, code=code, context=context, headers=fields, status_code=status)
    chain(mended, exc)
    return mended


def _usable_headers(headers: Any, problems: list[str]) -> dict[str, str]:
    """The fields of ``headers`` that ``header_field`` leaves as they are; ``problems``
    says what else there was."""
    if headers is _UNREADABLE:
        return {}
    if not isinstance(headers, Mapping):
        problems.append(f"headers is {type(headers).__name__}, not a mapping")
        return {}
    usable: dict[str, str] = {}
    try:
        for name, value in headers.items():
            try:
                field = header_field(name, value)
            except (TypeError, ValueError) as error:
                problems.append(f"header dropped: {error}")
                continue
            if field != (name, value):
                problems.append(f"header {name!r} sent as {field[1]!r}, not {value!r}")
            usable[field[0]] = field[1]
    except Exception as error:
        problems.append(f"reading headers raised {type(error).__name__}")
    return usable
