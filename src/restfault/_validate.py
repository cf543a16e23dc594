"""Each adapter option's validator, and the parsing they share.

A bad value raises ``ConfigurationError`` naming the option, the value and the fix;
``Settings.from_options`` calls one validator per option given.
"""

from __future__ import annotations

import importlib.util
import inspect
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import limits
from limits import RateLimitItem

from ._errors import ConfigurationError
from ._render import STYLE_NAMES

__all__ = [
    "STRATEGIES",
    "VALIDATORS",
    "LimitSpec",
    "Network",
    "check_callable",
    "is_async_callable",
    "limit_spec",
    "parse_limits",
]

STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
ON_STORAGE_ERROR = ("memory", "allow", "deny")
# RFC 9110 token characters: what a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Parsed limit items, or a callable of the request returning limit strings (or None).
LimitSpec: TypeAlias = tuple[RateLimitItem, ...] | Callable[[Any], Any]


def is_async_callable(fn: Any) -> bool:
    """An ``async def`` function (or partial of one), or an object with an async ``__call__``."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - the callable object's own __call__
    )


def parse_limits(value: Any, option: str) -> tuple[RateLimitItem, ...]:
    """``"10/second;1000/hour"`` or a list of such strings → parsed limits, or a clear error."""
    if value is None:
        return ()
    texts = _texts(option, value, "a rate limit string such as '10/minute', or a list of them")
    parsed: list[RateLimitItem] = []
    for text in texts:
        if not isinstance(text, str):
            raise ConfigurationError(f"{option}: {text!r} is not a rate limit string")
        try:
            items = limits.parse_many(text)
        except ValueError:
            raise ConfigurationError(
                f"{option}: {text!r} is not a rate limit; write it like "
                "'10/second', '100 per minute' or '10/second;1000/hour'"
            ) from None
        for item in items:
            if item.amount < 1:
                raise ConfigurationError(
                    f"{option}: {text!r} allows nothing ({item}); the amount must be >= 1"
                )
        parsed.extend(items)
    return tuple(parsed)


def limit_spec(value: Any, option: str, asynchronous: bool) -> LimitSpec:
    """A limit value as given: parsed now when it is a string, kept when it is a callable."""
    if callable(value):
        check_callable(value, option, asynchronous)
        function: Callable[[Any], Any] = value
        return function
    return parse_limits(value, option)


def check_callable(fn: Any, option: str, asynchronous: bool, what: str = "the request") -> None:
    """``fn`` must be callable with one argument; ``async`` only where the adapter awaits."""
    if not callable(fn) or not _takes_one_argument(fn):
        raise ConfigurationError(f"{option}={fn!r} must be a callable taking {what}")
    if not asynchronous and is_async_callable(fn):
        raise ConfigurationError(
            f"{option}={fn!r} is async, but a WSGI adapter cannot await it; "
            "pass a plain (sync) function"
        )


def _takes_one_argument(fn: Any) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return True
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True


def _texts(option: str, value: Any, expected: str) -> list[Any]:
    """``value`` as a list: one string, or an iterable of them (never bytes or a number)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes | bytearray) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{option}={value!r} must be {expected}")
    return list(value)


def _choice(option: str, value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ConfigurationError(
            f"{option}={value!r} is not allowed; use one of: {', '.join(map(repr, allowed))}"
        )
    return value


def _style(option: str, value: Any, asynchronous: bool) -> Any:
    if not callable(value) and value not in STYLE_NAMES:
        raise ConfigurationError(
            f"style={value!r} is not allowed; use one of: {', '.join(map(repr, STYLE_NAMES))}, "
            "or a callable (exc, debug) -> (dict, content_type)"
        )
    return value


def _flag(option: str, value: Any, asynchronous: bool) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{option}={value!r} must be True or False")
    return value


def _limits(option: str, value: Any, asynchronous: bool) -> LimitSpec:
    return limit_spec(value, option, asynchronous)


def _path_limits(option: str, value: Any, asynchronous: bool) -> tuple[tuple[str, LimitSpec], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"path_limits={value!r} must be a mapping such as {{'/api/v2/db/': '1000/hour'}}"
        )
    result = []
    for prefix, spec in value.items():
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ConfigurationError(
                f"path_limits: the key {prefix!r} must be a path prefix starting with '/'"
            )
        result.append((prefix, limit_spec(spec, f"path_limits[{prefix!r}]", asynchronous)))
    return tuple(result)


def _storage_uri(option: str, value: Any, asynchronous: bool) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise ConfigurationError(
            f"storage_uri={value!r} is not a storage URI such as 'memory://' or 'redis://host:6379'"
        )
    return value


def _mapping(option: str, value: Any, asynchronous: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{option}={value!r} must be a mapping")
    return dict(value)


def _strategy(option: str, value: Any, asynchronous: bool) -> Any:
    return _choice(option, value, STRATEGIES)


def _on_storage_error(option: str, value: Any, asynchronous: bool) -> Any:
    return _choice(option, value, ON_STORAGE_ERROR)


def _optional_callable(option: str, value: Any, asynchronous: bool) -> Any:
    if value is not None:
        check_callable(value, option, asynchronous)
    return value


def _networks(option: str, value: Any, asynchronous: bool) -> tuple[Network, ...]:
    if value is None:
        return ()
    texts = _texts(option, value, "a CIDR such as '10.0.0.0/8', or a list of them")
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{option}: {text!r} is not an IP address or CIDR such as '10.0.0.0/8'"
            ) from None
    return tuple(networks)


def _ipv6_subnet(option: str, value: Any, asynchronous: bool) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 32 <= value <= 64:
        raise ConfigurationError(
            f"ipv6_subnet={value!r} must be a prefix length from 32 to 64 (56 keys one "
            "customer's allocation), or None to key whole IPv6 addresses"
        )
    return value


def _seconds(option: str, value: Any, asynchronous: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise ConfigurationError(f"{option}={value!r} must be a positive number of seconds")
    return float(value)


def _text(option: str, value: Any, asynchronous: bool) -> str:
    if not isinstance(value, str) or (option == "key_prefix" and not value):
        raise ConfigurationError(f"{option}={value!r} must be a non-empty string")
    return value


def _paths(option: str, value: Any, asynchronous: bool) -> tuple[str, ...]:
    paths = _texts(option, value or (), "a path such as '/health', or a list")
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise ConfigurationError(f"{option}={paths!r} must be paths starting with '/'")
    return tuple(paths)


def _header_name(option: str, value: Any, asynchronous: bool) -> str | None:
    if value is not None and not (isinstance(value, str) and _TOKEN.fullmatch(value)):
        raise ConfigurationError(
            f"{option}={value!r} is not a header name; use a name such as 'X-Request-ID', "
            "or None to turn request ids off"
        )
    return value


def _metrics(option: str, value: Any, asynchronous: bool) -> bool:
    if _flag(option, value, asynchronous) and importlib.util.find_spec("opentelemetry") is None:
        raise ConfigurationError(
            "metrics=True needs the OpenTelemetry API: pip install 'restfault[otel]'"
        )
    return bool(value)


VALIDATORS: dict[str, Callable[[str, Any, bool], Any]] = {
    "style": _style,
    "debug": _flag,
    "default_limits": _limits,
    "path_limits": _path_limits,
    "storage_uri": _storage_uri,
    "storage_options": _mapping,
    "strategy": _strategy,
    "key_func": _optional_callable,
    "headers_enabled": _flag,
    "ietf_headers": _flag,
    "trusted_proxies": _networks,
    "ipv6_subnet": _ipv6_subnet,
    "on_storage_error": _on_storage_error,
    "storage_timeout": _seconds,
    "storage_retry_interval": _seconds,
    "key_prefix": _text,
    "exempt_paths": _paths,
    "enforce": _flag,
    "problem_type": _text,
    "convert_error_responses": _flag,
    "request_id_header": _header_name,
    "maintenance": _optional_callable,
    "metrics": _metrics,
}
