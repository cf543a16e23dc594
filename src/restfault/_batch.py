"""Batches with DreamFactory's semantics: ``halt``, ``continue`` and ``rollback``.

``run_batch`` and ``arun_batch`` share every piece of bookkeeping in ``_Batch``; they
differ only in how the operation (and the transaction) is called.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, NoReturn, TypeVar

from ._errors import BadRequestException, BatchException, RestException, chain
from ._params import ambiguous_parameter, query_values
from ._render import dumps
from ._translate import Translations, active_translations, to_rest_exception

__all__ = ["arun_batch", "batch_mode", "raise_single_error", "run_batch"]

logger = logging.getLogger("restfault")

T = TypeVar("T")
R = TypeVar("R")
Mode = Literal["halt", "continue", "rollback"]
MODES = ("halt", "continue", "rollback")
TranslateArg = Any  # an adapter (with .core.translations), Translations, or a mapping

_TRUE = frozenset({"1", "true", "yes", "on"})


def batch_mode(params: Mapping[str, Any]) -> Mode:
    """The batch mode a request's query parameters ask for (``continue``, ``rollback``).

    ``params`` is Flask's ``request.args``, Starlette's ``request.query_params`` or a plain
    mapping (see :func:`restfault.query_param`).

    >>> batch_mode({"rollback": "true"})
    'rollback'

    Both together are contradictory, and a flag repeated with values that disagree
    (``?rollback=true&rollback=false``) is ambiguous: a 400 ``BAD_REQUEST`` that says why.

    >>> batch_mode({"rollback": ["true", "1"]})
    'rollback'
    >>> batch_mode({"rollback": ["true", "false"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    restfault._errors.BadRequestException: Query parameter 'rollback' is repeated with ...
    """
    wants_continue = _flag(params, "continue")
    wants_rollback = _flag(params, "rollback")
    if wants_continue and wants_rollback:
        raise BadRequestException(
            "continue=true and rollback=true cannot be combined: rollback undoes the whole "
            "batch at the first failure, continue keeps going past it"
        )
    if wants_rollback:
        return "rollback"
    return "continue" if wants_continue else "halt"


def _flag(params: Mapping[str, Any], name: str) -> bool:
    # Values agree by meaning: ?rollback=true&rollback=1 asks for one thing.
    meanings = {value.strip().lower() in _TRUE for value in query_values(params, name)}
    if len(meanings) > 1:
        raise ambiguous_parameter(name)
    return True in meanings


def raise_single_error(exc: BatchException, item_count: int) -> NoReturn:
    """Raise a one-item batch's failure as that item's own error (400, 409...), else ``exc``.

    >>> from restfault import ConflictResourceException
    >>> def insert(record):
    ...     raise ConflictResourceException(code="UNIQUE_CONSTRAINT")
    >>> records = [{"email": "ada@example.com"}]
    >>> try:
    ...     run_batch(records, insert)
    ... except BatchException as exc:
    ...     raise_single_error(exc, len(records))
    Traceback (most recent call last):
      ...
    restfault._errors.ConflictResourceException: Conflict
    """
    cause = exc.causes.get(0) if item_count == 1 else None
    if cause is None:
        raise exc
    # Keep the item's own cause (the IntegrityError a translation turned into a 409).
    if cause.__cause__ is None:
        chain(cause, exc)
    raise cause


def _registry(translate: TranslateArg) -> Translations | None:
    active = active_translations.get()
    if translate is None:
        return active
    extra: Any
    if isinstance(translate, Translations):
        extra = translate
    elif isinstance(translate, Mapping):
        extra = Translations(translate)
    else:
        core = getattr(translate, "core", None)
        extra = getattr(core, "translations", None)
        if not isinstance(extra, Translations):
            raise TypeError(f"translate={translate!r} is not an adapter, Translations or mapping")
    return active.merged(extra) if active else extra


class _Batch:
    """The bookkeeping of one batch: results, failures, and the exception they make."""

    def __init__(self, mode: str, transaction: Any, translate: TranslateArg) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not a batch mode; use one of {', '.join(MODES)}")
        if mode == "rollback" and transaction is None:
            raise ValueError("mode='rollback' needs transaction=, e.g. lambda: connection")
        self.mode = mode
        self.translations = _registry(translate)
        self.results: list[Any] = []
        self.errors: list[dict[str, Any]] = []
        self.causes: dict[int, RestException] = {}

    def failed(self, index: int, exc: Exception) -> bool:
        """Record ``exc`` for item ``index``; True to stop. Unexpected exceptions propagate."""
        rest = to_rest_exception(exc, self.translations)
        if rest is None:
            raise exc
        error: dict[str, Any] = {
            "index": index,
            "status": rest.status_code,
            "code": rest.code,
            "message": rest.message,
        }
        if rest.context is not None and _encodable(rest.context):
            error["context"] = rest.context
        self.errors.append(error)
        self.causes[index] = rest
        self.results.append(None)
        return self.mode != "continue"

    def outcome(self, rolled_back: bool = False) -> list[Any]:
        if not self.errors:
            return self.results
        exc = BatchException(
            self.errors,
            resource=None if rolled_back else self.results,
            rolled_back=rolled_back,
        )
        exc.causes = self.causes
        raise exc


def _encodable(context: Any) -> bool:
    """Whether an item's context can be encoded; one that cannot (a circular one) is left
    out of its error, or the renderer would drop the whole batch's errors with it."""
    try:
        dumps(context)
    except Exception:
        logger.warning("restfault: a batch item's error context could not be encoded; dropped")
        return False
    return True


class _Abort(Exception):
    """Leaves the transaction's block so that its context manager rolls back."""


def run_batch(
    items: Iterable[T],
    operation: Callable[[T], R],
    *,
    mode: Mode = "halt",
    transaction: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    translate: TranslateArg = None,
) -> list[R]:
    """Run ``operation(item)`` for each item; return the results or raise ``BatchException``.

    With ``transaction``, rollback mode runs the whole batch in one ``transaction()``;
    halt and continue run each item in its own, so the items that succeed are committed
    and a failed item leaves nothing behind.

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE contacts (email TEXT UNIQUE)")
    >>> def insert(email):
    ...     return conn.execute("INSERT INTO contacts VALUES (?)", (email,)).lastrowid
    >>> run_batch(["ada@example.com", "grace@example.com"], insert, transaction=lambda: conn)
    [1, 2]
    """
    batch = _Batch(mode, transaction, translate)
    if mode == "rollback" and transaction is not None:  # _Batch refuses rollback without one
        try:
            with transaction():
                for index, item in enumerate(items):
                    try:
                        batch.results.append(operation(item))
                    except Exception as exc:
                        batch.failed(index, exc)
                        raise _Abort from exc
        except _Abort:
            return batch.outcome(rolled_back=True)
        return batch.outcome()
    for index, item in enumerate(items):
        try:
            if transaction is None:
                result = operation(item)
            else:
                with transaction():
                    result = operation(item)
        except Exception as exc:
            if batch.failed(index, exc):
                break
        else:
            batch.results.append(result)
    return batch.outcome()


async def arun_batch(
    items: Iterable[T],
    operation: Callable[[T], Awaitable[R]],
    *,
    mode: Mode = "halt",
    transaction: Callable[[], Any] | None = None,
    translate: TranslateArg = None,
) -> list[R]:
    """``run_batch`` for an async ``operation``; ``transaction`` may be sync or async.

    ``transaction()`` may return a context manager, an async one, or an awaitable of
    either (an ``async def`` that opens the transaction).
    """
    batch = _Batch(mode, transaction, translate)
    if mode == "rollback" and transaction is not None:  # _Batch refuses rollback without one
        try:
            async with _entered(transaction):
                for index, item in enumerate(items):
                    try:
                        batch.results.append(await _awaited(operation(item)))
                    except Exception as exc:
                        batch.failed(index, exc)
                        raise _Abort from exc
        except _Abort:
            return batch.outcome(rolled_back=True)
        return batch.outcome()
    for index, item in enumerate(items):
        try:
            if transaction is None:
                result = await _awaited(operation(item))
            else:
                async with _entered(transaction):
                    result = await _awaited(operation(item))
        except Exception as exc:
            if batch.failed(index, exc):
                break
        else:
            batch.results.append(result)
    return batch.outcome()


async def _awaited(value: Any) -> Any:
    # Tolerate a sync operation passed to arun_batch rather than failing on ``await``.
    return await value if inspect.isawaitable(value) else value


@contextlib.asynccontextmanager
async def _entered(transaction: Callable[[], Any]) -> AsyncIterator[None]:
    """Enter ``transaction()`` whether it is sync, async or awaitable."""
    manager = await _awaited(transaction())
    if hasattr(manager, "__aenter__"):
        async with manager:
            yield
    else:
        with manager:
            yield
