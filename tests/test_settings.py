"""Every bad option raises ConfigurationError when the adapter is created, naming the
option and the value; good ones are accepted by all four adapters."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from restfault import ConfigurationError
from restfault._backends import STORAGE_SCHEMES
from restfault._settings import Settings


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    pass


def _wsgi_app(environ: Any, start_response: Any) -> Any:  # pragma: no cover
    return []


def _starlette(**options: Any) -> Any:
    from starlette.applications import Starlette

    from restfault.starlette import RestFault

    return RestFault(Starlette(), **options)


def _starlette_deferred(**options: Any) -> Any:
    from restfault.starlette import RestFault

    return RestFault(**options)


def _flask(**options: Any) -> Any:
    from flask import Flask

    from restfault.flask import RestFault

    return RestFault(Flask("settings"), **options)


def _flask_deferred(**options: Any) -> Any:
    from restfault.flask import RestFault

    return RestFault(**options)


def _asgi(**options: Any) -> Any:
    from restfault.asgi import RestFaultMiddleware

    return RestFaultMiddleware(_asgi_app, **options)


def _wsgi(**options: Any) -> Any:
    from restfault.wsgi import RestFaultMiddleware

    return RestFaultMiddleware(_wsgi_app, **options)


ADAPTERS: dict[str, Callable[..., Any]] = {
    "starlette": _starlette,
    "starlette-deferred": _starlette_deferred,
    "flask": _flask,
    "flask-deferred": _flask_deferred,
    "asgi": _asgi,
    "wsgi": _wsgi,
}


@pytest.fixture(params=sorted(ADAPTERS))
def create(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ADAPTERS[request.param]


# (options, fragments the message must hold); the option name always, the value too.
BAD_OPTIONS: list[tuple[dict[str, Any], list[str]]] = [
    ({"style": "xml"}, ["style", "'xml'", "dreamfactory", "bkend", "problem"]),
    ({"style": None}, ["style", "None"]),
    ({"strategy": "leaky-bucket"}, ["strategy", "'leaky-bucket'", "fixed-window"]),
    ({"default_limits": "ten per fortnight"}, ["default_limits", "'ten per fortnight'"]),
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
    create: Callable[..., Any], options: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        create(**options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)


def test_unknown_scheme_lists_every_known_one() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_options(asynchronous=True, storage_uri="couchbase://x")
    for scheme in STORAGE_SCHEMES:
        assert f"{scheme}://" in str(info.value)


GOOD_OPTIONS: list[dict[str, Any]] = [
    {},
    {"style": "bkend"},
    {"style": "problem", "problem_type": "https://errors.example/"},
    {"style": lambda exc, debug: ({}, "application/json")},
    {"debug": True},
    {"default_limits": "100/minute;1000/hour"},
    {"default_limits": ["10 per second", "100/minute"]},
    {"strategy": "moving-window"},
    {"strategy": "sliding-window-counter"},
    {"storage_uri": "memory://"},
    {"storage_uri": "redis://127.0.0.1:1", "on_storage_error": "allow"},
    {"storage_uri": "memcached://127.0.0.1:1", "strategy": "sliding-window-counter"},
    {"key_func": lambda request: "k"},
    {"headers_enabled": False},
    {"trusted_proxies": "10.0.0.0/8"},
    {"trusted_proxies": ["10.0.0.1", "fd00::/8"]},
    {"on_storage_error": "deny"},
    {"exempt_paths": ["/health", "/metrics/"]},
]


@pytest.mark.parametrize("options", GOOD_OPTIONS)
def test_good_options(create: Callable[..., Any], options: dict[str, Any]) -> None:
    adapter = create(**options)
    assert adapter.core.settings.strategy in {
        "fixed-window",
        "moving-window",
        "sliding-window-counter",
    }


def test_settings_are_frozen() -> None:
    import dataclasses

    settings = Settings.from_options(asynchronous=False, style="bkend")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.style = "problem"  # type: ignore[misc]


def test_defaults_match_the_api() -> None:
    settings = Settings.from_options(asynchronous=True)
    assert settings.style == "dreamfactory"
    assert settings.debug is False
    assert settings.default_limits == ()
    assert settings.storage_uri == "memory://"
    assert settings.strategy == "fixed-window"
    assert settings.key_func is None
    assert settings.headers_enabled is True
    assert settings.trusted_proxies == ()
    assert settings.on_storage_error == "memory"


# -- the decorators check their arguments when they are applied ----------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (("three a minute",), {}, "'three a minute'"),
        (("3/minute",), {"code": ""}, "code"),
        (("3/minute",), {"cost": 0}, "cost"),
        (("3/minute",), {"key_func": "ip"}, "key_func"),
    ],
)
@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_bad_limit_decorator(
    framework: str, args: tuple[Any, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    adapter = ADAPTERS[framework]()
    with pytest.raises(ConfigurationError, match=fragment):
        adapter.limit(*args, **kwargs)(lambda: None)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_limit_needs_a_value(framework: str) -> None:
    adapter = ADAPTERS[framework]()
    with pytest.raises(ConfigurationError, match="limit"):
        adapter.limit(lambda: None)
