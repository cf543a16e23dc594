"""Which ``limits`` storage a URI names (checked at start-up), built with timeouts, bounded
retries and pools.

Sync for WSGI, the ``limits.aio`` twin for ASGI; ``memory://`` is restfault's own
``InProcessStorage`` for both (dict work under a lock: nothing to await, nothing to time out).
"""

from __future__ import annotations

import importlib.util
import re
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import storage_from_string

from ._errors import ConfigurationError
from ._memory import InProcessStorage
from ._ops import AsyncStorage, SyncStorage

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = [
    "STORAGE_SCHEMES",
    "aclose_storage",
    "build_async_storage",
    "build_sync_storage",
    "check_storage",
    "redacted_uri",
    "storage_options",
]

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


def check_storage(uri: str, strategy: str, asynchronous: bool) -> None:
    """The storage URI names a known scheme, its driver is installed, and it supports
    the strategy."""
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


_REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel")
_POOLED_SCHEMES = ("redis", "rediss", "redis+unix")
# Options ``limits`` itself consumes; every other one configures redis-py's connections.
_LIMITS_OPTIONS = ("implementation", "wrap_exceptions", "key_prefix")


def storage_options(settings: Settings, asynchronous: bool) -> dict[str, Any]:
    """The user's storage options, plus timeouts (and no client retries) where unset."""
    scheme = settings.storage_scheme
    options = dict(settings.storage_options)
    timeout = settings.storage_timeout
    if scheme in _REDIS_SCHEMES:
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
        if asynchronous:
            options.setdefault("implementation", "redispy")
            # The asyncio pool hands out connections Redis closed while it was down (a
            # restart): without one immediate retry on a fresh connection, each of them
            # fails once after recovery and starts a new outage. The whole call stays
            # bounded by storage_timeout, retry or not.
            from redis.asyncio.retry import Retry as AsyncRetry
            from redis.backoff import NoBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError

            options.setdefault("retry", AsyncRetry(NoBackoff(), 1))
            options.setdefault("retry_on_error", [RedisConnectionError])
        else:
            # redis-py retries a timed-out command three times by default, which would
            # turn a storage_timeout of 0.25 s into a second or more.
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            options.setdefault("retry", Retry(NoBackoff(), 0))
        if scheme == "redis+sentinel":
            # limits always hands redis-py a sentinel_kwargs dict, so redis-py never copies
            # the socket timeouts to the sentinel connections: a sentinel that stopped
            # answering would hang the master lookup.
            sentinel = dict(options.get("sentinel_kwargs") or {})
            for name in ("socket_timeout", "socket_connect_timeout", "retry"):
                if name in options:
                    sentinel.setdefault(name, options[name])
            options["sentinel_kwargs"] = sentinel
    elif scheme == "memcached" and not asynchronous:
        options.setdefault("connect_timeout", timeout)
        options.setdefault("timeout", timeout)
    return options


def build_sync_storage(settings: Settings) -> SyncStorage:
    """The sync ``limits`` storage of ``settings.storage_uri`` (WSGI)."""
    if settings.in_process:
        return InProcessStorage()
    return cast(SyncStorage, _build(settings, asynchronous=False))


def build_async_storage(settings: Settings) -> AsyncStorage:
    """The ``limits.aio`` storage of ``settings.storage_uri`` (ASGI; not memory://)."""
    return cast(AsyncStorage, _build(settings, asynchronous=True))


def _build(settings: Settings, *, asynchronous: bool) -> Any:
    uri = settings.storage_uri
    pooled = settings.storage_scheme in _POOLED_SCHEMES
    try:
        options = storage_options(settings, asynchronous)
        if pooled and "connection_pool" not in options:
            options = _with_blocking_pool(uri, options, settings.storage_timeout, asynchronous)
        storage = storage_from_string(f"async+{uri}" if asynchronous else uri, **options)
    except (LimitsConfigurationError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"storage_uri={redacted_uri(uri)!r}: {exc}") from exc
    if pooled and "connection_pool" not in settings.storage_options:
        # The client owns the pool built for it, as redis.from_url's would: closing (or
        # collecting) the client closes its connections. limits keeps its client as
        # ``storage`` (the async storages behind a ``bridge``).
        client = getattr(getattr(storage, "bridge", storage), "storage", None)
        if client is not None:
            client.auto_close_connection_pool = True
    return storage


def _with_blocking_pool(
    uri: str, options: dict[str, Any], timeout: float, asynchronous: bool
) -> dict[str, Any]:
    """``options`` with a pool that waits (up to ``timeout``) for a free connection.

    redis-py's default pool raises MaxConnectionsError once 100 calls are in flight (200
    threads, or 200 concurrent tasks): taken for an outage, that would hand the requests
    to the per-process fallback, which counts apart, and let more through than the limit.
    """
    if asynchronous:
        from redis.asyncio import BlockingConnectionPool as AsyncPool

        pool_class: Any = AsyncPool
    else:
        from redis import BlockingConnectionPool

        pool_class = BlockingConnectionPool
    url = "unix://" + uri.split("://", 1)[1] if uri.lower().startswith("redis+unix://") else uri
    kept = {name: options[name] for name in _LIMITS_OPTIONS if name in options}
    pool_options = {name: v for name, v in options.items() if name not in _LIMITS_OPTIONS}
    pool_options.setdefault("max_connections", 100)
    return {**kept, "connection_pool": pool_class.from_url(url, timeout=timeout, **pool_options)}


async def aclose_storage(storage: Any) -> None:
    """Close the connections of a ``limits.aio`` storage in the loop they belong to.

    limits has no public close for its async storages: its client (kept as ``storage``
    behind a ``bridge``) is closed as redis-py and memcachio close theirs.
    """
    bridge = getattr(storage, "bridge", storage)
    client = getattr(bridge, "storage", None)
    aclose = getattr(client, "aclose", None)
    if aclose is not None:  # redis.asyncio
        await aclose()
    memcachio = getattr(bridge, "_storage", None)
    pool = getattr(memcachio, "connection_pool", None)
    if pool is not None:
        pool.close()
