"""Batches with DreamFactory's semantics: ``halt``, ``continue`` and ``rollback``.

``run_batch`` and ``arun_batch`` share every piece of bookkeeping in ``_Batch``; they
differ only in how the operation (and the transaction) is called.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, NoReturn, TypeVar

from ._errors import BadRequestException, BatchException, RestException
from ._translate import Translations, active_translations, to_rest_exception

__all__ = ["arun_batch", "batch_mode", "raise_single_error", "run_batch"]

T = TypeVar("T")
R = TypeVar("R")
Mode = Literal["halt", "continue", "rollback"]
MODES = ("halt", "continue", "rollback")
TranslateArg = Any  # an adapter (with .core.translations), Translations, or a mapping

_TRUE = frozenset({"1", "true", "yes", "on"})


def batch_mode(params: Mapping[str, Any]) -> Mode:
    """The batch mode a request's query parameters ask for (``continue``, ``rollback``).

    >>> batch_mode({"rollback": "true"})
    'rollback'

    Both together are contradictory: a 400 ``BAD_REQUEST`` that says why.
    """
    wants_continue = str(params.get("continue", "")).strip().lower() in _TRUE
    wants_rollback = str(params.get("rollback", "")).strip().lower() in _TRUE
    if wants_continue and wants_rollback:
        raise BadRequestException(
            "continue=true and rollback=true cannot be combined: rollback undoes the whole "
            "batch at the first failure, continue keeps going past it"
        )
    if wants_rollback:
        return "rollback"
    return "continue" if wants_continue else "halt"


def raise_single_error(exc: BatchException, item_count: int) -> NoReturn:
    """Raise a one-item batch's failure as that item's own error (400, 409...), else ``exc``.

    >>> except BatchException as exc:
    ...     raise_single_error(exc, len(records))
    """
    cause = exc.causes.get(0) if item_count == 1 else None
    if cause is None:
        raise exc
    raise cause from exc


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
        if rest.context is not None:
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

    >>> run_batch(records, insert, mode="rollback", transaction=lambda: conn)
    """
    batch = _Batch(mode, transaction, translate)
    if mode != "rollback":
        for index, item in enumerate(items):
            try:
                batch.results.append(operation(item))
            except Exception as exc:
                if batch.failed(index, exc):
                    break
        return batch.outcome()
    try:
        with transaction():  # type: ignore[misc]
            for index, item in enumerate(items):
                try:
                    batch.results.append(operation(item))
                except Exception as exc:
                    batch.failed(index, exc)
                    raise _Abort from exc
    except _Abort:
        return batch.outcome(rolled_back=True)
    return batch.outcome()


async def arun_batch(
    items: Iterable[T],
    operation: Callable[[T], Awaitable[R]],
    *,
    mode: Mode = "halt",
    transaction: Callable[[], Any] | None = None,
    translate: TranslateArg = None,
) -> list[R]:
    """``run_batch`` for an async ``operation``; ``transaction`` may be sync or async."""
    batch = _Batch(mode, transaction, translate)
    if mode != "rollback":
        for index, item in enumerate(items):
            try:
                batch.results.append(await operation(item))
            except Exception as exc:
                if batch.failed(index, exc):
                    break
        return batch.outcome()
    manager = transaction()  # type: ignore[misc]
    try:
        if hasattr(manager, "__aenter__"):
            async with manager:
                await _arun_all(batch, items, operation)
        else:
            with manager:
                await _arun_all(batch, items, operation)
    except _Abort:
        return batch.outcome(rolled_back=True)
    return batch.outcome()


async def _arun_all(
    batch: _Batch, items: Iterable[Any], operation: Callable[[Any], Awaitable[Any]]
) -> None:
    for index, item in enumerate(items):
        try:
            result = operation(item)
            batch.results.append(await result if inspect.isawaitable(result) else result)
        except Exception as exc:
            batch.failed(index, exc)
            raise _Abort from exc
