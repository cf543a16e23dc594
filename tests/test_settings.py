"""Every bad option raises ConfigurationError when the adapter is created, naming the
option and the value; every good one arrives in the adapter's settings, normalised, on
every adapter (bound to an app at once, or later by ``init_app``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import limits
import pytest
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

import restfault.asgi
import restfault.flask
import restfault.starlette
import restfault.wsgi
from restfault import ConfigurationError, RestException
from tests.harness import ADAPTERS, ENDPOINT_ADAPTERS, Adapter, EndpointAdapter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


async def _asgi_app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    pass


def _wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    return []  # pragma: no cover


# How each adapter is created: (adapter, way) -> constructor.
CONSTRUCTORS: dict[str, tuple[str, Callable[..., Adapter]]] = {
    "asgi": ("asgi", lambda **o: restfault.asgi.RestFaultMiddleware(_asgi_app, **o)),
    "wsgi": ("wsgi", lambda **o: restfault.wsgi.RestFaultMiddleware(_wsgi_app, **o)),
    "starlette": ("starlette", lambda **o: restfault.starlette.RestFault(Starlette(), **o)),
    "starlette-deferred": ("starlette", lambda **o: restfault.starlette.RestFault(**o)),
    "fastapi": ("fastapi", lambda **o: restfault.starlette.RestFault(FastAPI(), **o)),
    "flask": ("flask", lambda **o: restfault.flask.RestFault(Flask("settings"), **o)),
    "flask-deferred": ("flask", lambda **o: restfault.flask.RestFault(**o)),
}
assert {adapter for adapter, _ in CONSTRUCTORS.values()} == set(ADAPTERS)


@pytest.fixture(params=sorted(CONSTRUCTORS))
def create(request: pytest.FixtureRequest) -> Callable[..., Adapter]:
    return CONSTRUCTORS[request.param][1]


def settings_of(adapter: Adapter) -> Any:
    """The adapter's settings.

    The Starlette and Flask adapters expose ``.settings``; the pure middlewares do not (yet),
    so theirs are read from ``.core``, an internal attribute.
    """
    if isinstance(adapter, restfault.asgi.RestFaultMiddleware | restfault.wsgi.RestFaultMiddleware):
        return adapter.core.settings
    return adapter.settings


# (options, fragments the message must hold); the option name always, the value too.
BAD_OPTIONS: list[tuple[dict[str, Any], list[str]]] = [
    ({"style": "xml"}, ["style", "'xml'", "dreamfactory", "bkend", "problem"]),
    ({"style": None}, ["style", "None"]),
    ({"strategy": "leaky-bucket"}, ["strategy", "'leaky-bucket'", "fixed-window"]),
    ({"default_limits": "ten per fortnight"}, ["default_limits", "'ten per fortnight'"]),
    ({"default_limits": "100/fortnight"}, ["default_limits", "'100/fortnight'"]),
    ({"default_limits": "10/minute;oops"}, ["default_limits", "oops"]),
    ({"default_limits": "0/minute"}, ["default_limits", "'0/minute'"]),
    ({"default_limits": ["5/second", "0 per hour"]}, ["default_limits", "'0 per hour'"]),
    ({"default_limits": 5}, ["default_limits", "5"]),
    ({"default_limits": b"10/minute"}, ["default_limits", "b'10/minute'"]),
    ({"default_limits": ""}, ["default_limits", "''"]),
    ({"default_limits": ["10/minute", 5]}, ["default_limits", "5"]),
    (
        {"storage_uri": "mongodb://db:27017"},
        ["storage_uri", "mongodb://db:27017", "memory://", "redis://", "memcached://"],
    ),
    ({"storage_uri": "localhost:6379"}, ["storage_uri", "'localhost:6379'"]),
    ({"storage_uri": 6379}, ["storage_uri", "6379"]),
    (
        {"storage_uri": "memcached://localhost:11211", "strategy": "moving-window"},
        ["strategy", "'moving-window'", "memcached"],
    ),
    ({"trusted_proxies": 10}, ["trusted_proxies", "10"]),
    ({"trusted_proxies": [None]}, ["trusted_proxies", "None"]),
    ({"trusted_proxies": "10.0.0.0/33"}, ["trusted_proxies", "'10.0.0.0/33'"]),
    (
        {"trusted_proxies": ["10.0.0.0/8", "proxy.internal"]},
        ["trusted_proxies", "'proxy.internal'"],
    ),
    ({"on_storage_error": "retry"}, ["on_storage_error", "'retry'", "memory", "allow", "deny"]),
    ({"stlye": "bkend"}, ["stlye", "style"]),
    ({"key_func": "client_ip"}, ["key_func", "'client_ip'"]),
    ({"debug": "yes"}, ["debug", "'yes'"]),
    ({"headers_enabled": 1}, ["headers_enabled", "1"]),
    ({"storage_timeout": 0}, ["storage_timeout", "0"]),
    ({"storage_timeout": -1.5}, ["storage_timeout", "-1.5"]),
    ({"storage_timeout": "fast"}, ["storage_timeout", "'fast'"]),
    ({"storage_timeout": math.inf}, ["storage_timeout", "inf"]),
    ({"storage_timeout": True}, ["storage_timeout", "True"]),
    ({"storage_retry_interval": 0}, ["storage_retry_interval", "0"]),
    ({"storage_options": ["timeout"]}, ["storage_options", "['timeout']"]),
    ({"exempt_paths": ["health"]}, ["exempt_paths", "'health'"]),
    ({"exempt_paths": 5}, ["exempt_paths", "5"]),
    ({"key_prefix": ""}, ["key_prefix", "''"]),
    ({"problem_type": 404}, ["problem_type", "404"]),
]


@pytest.mark.parametrize(
    ("options", "fragments"),
    BAD_OPTIONS,
    ids=[f"{next(iter(o))}={o[next(iter(o))]!r}" for o, _ in BAD_OPTIONS],
)
def test_bad_option_names_option_and_value(
    create: Callable[..., Adapter], options: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        create(**options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)


# Every storage scheme restfault knows (API.md §4's storage_uri, and their variants).
SCHEMES = [
    "memory",
    "redis",
    "rediss",
    "redis+unix",
    "redis+cluster",
    "redis+sentinel",
    "memcached",
]


def test_unknown_scheme_lists_every_known_one(create: Callable[..., Adapter]) -> None:
    with pytest.raises(ConfigurationError) as info:
        create(storage_uri="couchbase://x")
    assert str(info.value).endswith("known schemes: " + ", ".join(f"{s}://" for s in SCHEMES))


def _house(exc: RestException, debug: bool) -> tuple[dict[str, Any], str]:
    return {}, "application/json"  # pragma: no cover


def _key(request: object) -> str:
    return "k"  # pragma: no cover


def _plan(request: object) -> str | None:
    return None  # pragma: no cover


GOOD_OPTIONS: list[dict[str, Any]] = [
    {},
    {"style": "bkend"},
    {"style": "problem", "problem_type": "https://errors.example/"},
    {"style": _house},
    {"debug": True},
    {"default_limits": "100/minute;1000/hour"},
    {"default_limits": ["10 per second", "100/minute"]},
    {"strategy": "moving-window"},
    {"strategy": "sliding-window-counter"},
    {"storage_uri": "memory://"},
    {"storage_uri": "redis://127.0.0.1:1", "on_storage_error": "allow"},
    {"storage_uri": "memcached://127.0.0.1:1", "strategy": "sliding-window-counter"},
    {"storage_uri": "redis://127.0.0.1:1", "storage_options": {"socket_keepalive": True}},
    {"key_func": _key},
    {"headers_enabled": False},
    {"ietf_headers": True},
    {"trusted_proxies": "10.0.0.0/8"},
    {"trusted_proxies": ["10.0.0.1", "fd00::/8"]},
    {"on_storage_error": "deny"},
    {"storage_timeout": 1.5, "storage_retry_interval": 2},
    {"key_prefix": "myapp"},
    {"exempt_paths": ["/health", "/metrics/"]},
    {"exempt_paths": "/health"},
    {"convert_error_responses": False},
    {"default_limits": _plan},
    {"path_limits": {"/api/v2/db/": "1000/hour", "/api/": ["10/second", "100/minute"]}},
    {"path_limits": {"/reports/": _plan}},
    {"ipv6_subnet": 48},
    {"ipv6_subnet": None},
    {"enforce": False},
    {"request_id_header": "X-Request-ID"},
    {"maintenance": _plan},
]


def normalised(option: str, value: Any) -> Any:
    """``value`` as the settings hold it (parsed limits, networks, tuples, floats)."""
    texts = [value] if isinstance(value, str) else value
    if callable(value):
        return value
    if option == "default_limits":
        return tuple(item for text in texts for item in limits.parse_many(text))
    if option == "path_limits":
        return tuple((prefix, normalised("default_limits", spec)) for prefix, spec in value.items())
    if option == "trusted_proxies":
        return tuple(ipaddress.ip_network(text, strict=False) for text in texts)
    if option == "exempt_paths":
        return tuple(texts)
    if option in ("storage_timeout", "storage_retry_interval"):
        return float(value)
    return value


@pytest.mark.parametrize("options", GOOD_OPTIONS, ids=lambda o: ",".join(o) or "none")
def test_good_options_arrive_in_the_settings(
    create: Callable[..., Adapter], options: dict[str, Any]
) -> None:
    settings = settings_of(create(**options))
    for option, value in options.items():
        expected = normalised(option, value)
        got = getattr(settings, option)
        assert got == expected, (option, got, expected)
        assert type(got) is type(expected), (option, type(got))


DEFAULTS: dict[str, Any] = {
    "style": "dreamfactory",
    "debug": False,
    "default_limits": (),
    "storage_uri": "memory://",
    "strategy": "fixed-window",
    "key_func": None,
    "headers_enabled": True,
    "ietf_headers": False,
    "trusted_proxies": (),
    "on_storage_error": "memory",
    "storage_timeout": 0.25,
    "storage_retry_interval": 1.0,
    "storage_options": {},
    "key_prefix": "restfault",
    "exempt_paths": (),
    "problem_type": "about:blank",
    "convert_error_responses": True,
    "path_limits": (),
    "ipv6_subnet": 56,
    "enforce": True,
    "request_id_header": None,
    "maintenance": None,
    "metrics": False,
}


def test_defaults_match_the_api(create: Callable[..., Adapter]) -> None:
    settings = settings_of(create())
    assert {f.name for f in dataclasses.fields(settings)} == set(DEFAULTS)
    for option, value in DEFAULTS.items():
        assert getattr(settings, option) == value, option


def test_settings_are_frozen(create: Callable[..., Adapter]) -> None:
    settings = settings_of(create(style="bkend"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.style = "problem"
    assert settings.style == "bkend"


# -- the decorators check their arguments when they are applied ----------------------------


def endpoint_adapter(adapter: str) -> EndpointAdapter:
    created = CONSTRUCTORS[adapter][1]()
    assert isinstance(created, restfault.starlette.RestFault | restfault.flask.RestFault)
    return created


def _view() -> None:
    pass  # pragma: no cover


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (("three a minute",), {}, "'three a minute'"),
        (("3/minute",), {"code": ""}, "code"),
        (("3/minute",), {"cost": 0}, "cost"),
        (("3/minute",), {"key_func": "ip"}, "key_func"),
    ],
)
@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_bad_limit_decorator(
    adapter: str, args: tuple[Any, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        endpoint_adapter(adapter).limit(*args, **kwargs)(_view)


@pytest.mark.parametrize("adapter", ENDPOINT_ADAPTERS)
def test_limit_needs_a_value(adapter: str) -> None:
    with pytest.raises(ConfigurationError, match="limit"):
        endpoint_adapter(adapter).limit(_view)  # type: ignore[arg-type]  # deliberately wrong
