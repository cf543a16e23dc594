"""One frozen settings object, validated once when an adapter is created."""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import limits
from limits import RateLimitItem

from ._errors import ConfigurationError
from ._render import STYLE_NAMES, Style

__all__ = ["STORAGE_SCHEMES", "STRATEGIES", "Settings", "parse_limits", "redacted_uri"]

STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
ON_STORAGE_ERROR = ("memory", "allow", "deny")
# scheme -> (driver module for sync code, for async code, the extra that installs them)
STORAGE_SCHEMES: dict[str, tuple[str | None, str | None, str | None]] = {
    "memory": (None, None, None),
    "redis": ("redis", "redis", "redis"),
    "rediss": ("redis", "redis", "redis"),
    "redis+unix": ("redis", "redis", "redis"),
    "redis+cluster": ("redis", "redis", "redis"),
    "redis+sentinel": ("redis", "redis", "redis"),
    "memcached": ("pymemcache", "memcachio", "memcached"),
}
# Strategies each storage family supports (limits raises deep inside otherwise).
_MEMCACHED_STRATEGIES = ("fixed-window", "sliding-window-counter")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_limits(value: str | Iterable[str] | None, option: str) -> tuple[RateLimitItem, ...]:
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


def _networks(value: str | Iterable[str] | None) -> tuple[Network, ...]:
    if value is None:
        return ()
    texts = _texts("trusted_proxies", value, "a CIDR such as '10.0.0.0/8', or a list of them")
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"trusted_proxies: {text!r} is not an IP address or CIDR such as '10.0.0.0/8'"
            ) from None
    return tuple(networks)


def _seconds(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise ConfigurationError(f"{option}={value!r} must be a positive number of seconds")
    return float(value)


# The user info of a URI (greedy: an unencoded "@" in a password still ends at the last
# one), and password parameters in its query string.
_USERINFO = re.compile(r"(?<=://)[^/?#]*@")
_PASSWORD_PARAMETER = re.compile(r"(?i)(password=)[^&#]*")


def redacted_uri(uri: str) -> str:
    """``uri`` without its credentials, fit for a log line or an error message.

    >>> redacted_uri("redis://:hunter2@cache:6379/0")
    'redis://***@cache:6379/0'
    """
    return _PASSWORD_PARAMETER.sub(r"\1***", _USERINFO.sub("***@", uri))


def _check_storage(uri: Any, strategy: str, asynchronous: bool) -> str:
    if not isinstance(uri, str) or "://" not in uri:
        raise ConfigurationError(
            f"storage_uri={uri!r} is not a storage URI such as 'memory://' or 'redis://host:6379'"
        )
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in STORAGE_SCHEMES:
        raise ConfigurationError(
            f"storage_uri={redacted_uri(uri)!r}: unknown scheme {scheme!r}; "
            f"known schemes: {', '.join(s + '://' for s in STORAGE_SCHEMES)}"
        )
    sync_driver, async_driver, extra = STORAGE_SCHEMES[scheme]
    driver = async_driver if asynchronous else sync_driver
    if driver is not None and importlib.util.find_spec(driver) is None:
        raise ConfigurationError(
            f"storage_uri={redacted_uri(uri)!r} needs the {driver!r} package: "
            f"pip install 'restfault[{extra}]'"
        )
    if scheme == "memcached" and strategy not in _MEMCACHED_STRATEGIES:
        raise ConfigurationError(
            f"strategy={strategy!r} does not work on memcached://; use one of: "
            f"{', '.join(map(repr, _MEMCACHED_STRATEGIES))}"
        )
    return uri


@dataclass(frozen=True, slots=True)
class Settings:
    """Every adapter option, checked once; see ``Settings.from_options``."""

    style: Style = "dreamfactory"
    debug: bool = False
    default_limits: tuple[RateLimitItem, ...] = ()
    storage_uri: str = "memory://"
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = "fixed-window"
    key_func: Callable[[Any], Any] | None = None
    headers_enabled: bool = True
    ietf_headers: bool = False
    trusted_proxies: tuple[Network, ...] = ()
    on_storage_error: Literal["memory", "allow", "deny"] = "memory"
    storage_timeout: float = 0.25
    storage_retry_interval: float = 1.0
    key_prefix: str = "restfault"
    exempt_paths: tuple[str, ...] = ()
    problem_type: str = "about:blank"
    convert_error_responses: bool = True

    @classmethod
    def from_options(cls, *, asynchronous: bool, **options: Any) -> Settings:
        """Validate keyword options; a bad one raises ConfigurationError naming it."""
        known = cls.__dataclass_fields__
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(known)}"
            )
        style = options.get("style", "dreamfactory")
        if not callable(style) and style not in STYLE_NAMES:
            raise ConfigurationError(
                f"style={style!r} is not allowed; use one of: "
                f"{', '.join(map(repr, STYLE_NAMES))}, "
                "or a callable (exc, debug) -> (dict, content_type)"
            )
        strategy = _choice("strategy", options.get("strategy", "fixed-window"), STRATEGIES)
        key_func = options.get("key_func")
        if key_func is not None and not callable(key_func):
            raise ConfigurationError(f"key_func={key_func!r} must be a callable taking the request")
        storage_options = options.get("storage_options") or {}
        if not isinstance(storage_options, Mapping):
            raise ConfigurationError(f"storage_options={storage_options!r} must be a mapping")
        exempt_paths = _texts(
            "exempt_paths", options.get("exempt_paths") or (), "a path such as '/health', or a list"
        )
        if not all(isinstance(p, str) and p.startswith("/") for p in exempt_paths):
            raise ConfigurationError(
                f"exempt_paths={exempt_paths!r} must be paths starting with '/'"
            )
        key_prefix = options.get("key_prefix", "restfault")
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ConfigurationError(f"key_prefix={key_prefix!r} must be a non-empty string")
        problem_type = options.get("problem_type", "about:blank")
        if not isinstance(problem_type, str):
            raise ConfigurationError(f"problem_type={problem_type!r} must be a URI string")
        for flag in ("debug", "headers_enabled", "ietf_headers", "convert_error_responses"):
            if flag in options and not isinstance(options[flag], bool):
                raise ConfigurationError(f"{flag}={options[flag]!r} must be True or False")
        return cls(
            style=style,
            debug=options.get("debug", False),
            default_limits=parse_limits(options.get("default_limits"), "default_limits"),
            storage_uri=_check_storage(
                options.get("storage_uri", "memory://"), strategy, asynchronous
            ),
            storage_options=dict(storage_options),
            strategy=strategy,
            key_func=key_func,
            headers_enabled=options.get("headers_enabled", True),
            ietf_headers=options.get("ietf_headers", False),
            trusted_proxies=_networks(options.get("trusted_proxies")),
            on_storage_error=_choice(
                "on_storage_error", options.get("on_storage_error", "memory"), ON_STORAGE_ERROR
            ),
            storage_timeout=_seconds("storage_timeout", options.get("storage_timeout", 0.25)),
            storage_retry_interval=_seconds(
                "storage_retry_interval", options.get("storage_retry_interval", 1.0)
            ),
            key_prefix=key_prefix,
            exempt_paths=tuple(exempt_paths),
            problem_type=problem_type,
            convert_error_responses=options.get("convert_error_responses", True),
        )
