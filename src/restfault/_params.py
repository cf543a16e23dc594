"""Query parameters by one rule: a parameter repeated with values that disagree is ambiguous.

Frameworks differ on ``?a=1&a=2``: Starlette's ``query_params["a"]`` is the last value,
werkzeug's ``args["a"]`` the first, so the same request would mean two things. restfault
reads every value and answers 400 instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import BadRequestException

__all__ = ["ambiguous_parameter", "query_param", "query_values"]


def query_values(params: Mapping[str, Any], name: str) -> list[str]:
    """Every value of query parameter ``name``, in order.

    ``params`` is werkzeug's ``MultiDict`` (Flask's ``request.args``), Starlette's
    ``QueryParams`` (both have ``getlist``) or a plain mapping whose values are str or
    lists of str (as ``urllib.parse.parse_qs`` returns).

    >>> query_values({"filter": ["a=1", "a=2"], "x": "y"}, "filter")
    ['a=1', 'a=2']
    """
    getlist = getattr(params, "getlist", None)
    if callable(getlist):
        return [str(value) for value in getlist(name)]
    value = params.get(name)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def ambiguous_parameter(name: str, code: str = "BAD_REQUEST") -> BadRequestException:
    """The 400 for a query parameter given more than once with values that disagree."""
    return BadRequestException(
        f"Query parameter '{name}' is repeated with different values; send it once",
        code=code,
        context={"parameter": name},
    )


def query_param(params: Mapping[str, Any], name: str, *, code: str = "BAD_REQUEST") -> str | None:
    """The value of query parameter ``name``, or ``None`` when it is absent.

    Repeating it with the same value is harmless; with different values it is ambiguous:
    a 400 ``BadRequestException`` with ``code`` that names the parameter.

    >>> query_param({"filter": ["email=a@example.com"] * 2}, "filter")
    'email=a@example.com'
    >>> query_param({"filter": ["id=1", "id=2"]}, "filter")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    restfault._errors.BadRequestException: Query parameter 'filter' is repeated with ...
    """
    values = query_values(params, name)
    if len(set(values)) > 1:
        raise ambiguous_parameter(name, code)
    return values[0] if values else None
