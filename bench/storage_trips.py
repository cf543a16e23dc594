"""Redis round trips per request, counted on the client and on the server.

Each variant runs ``n`` requests in-process against a private redis-server. Round trips
are the packets redis-py sends (``send_packed_command``, sync and asyncio, a pipeline
counting once); the server's ``INFO commandstats`` adds which commands ran, including
those a Lua script (``EVALSHA``) runs inside one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from bench import apps
from bench.inprocess import make_driver

_IGNORED = {"info", "config", "client", "hello", "ping", "select", "flushall", "script"}


def _commandstats(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in _IGNORED
    }


@contextlib.contextmanager
def _counting_round_trips() -> Iterator[list[int]]:
    import redis.asyncio.connection as async_connection
    import redis.connection as sync_connection

    counter = [0]
    sync_send = sync_connection.AbstractConnection.send_packed_command
    async_send = async_connection.AbstractConnection.send_packed_command

    def counted_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return sync_send(self, *args, **kwargs)  # type: ignore[no-untyped-call]  # redis-py's

    async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return await async_send(self, *args, **kwargs)

    sync_connection.AbstractConnection.send_packed_command = counted_sync  # type: ignore[method-assign]
    async_connection.AbstractConnection.send_packed_command = counted_async  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        sync_connection.AbstractConnection.send_packed_command = sync_send  # type: ignore[method-assign]
        async_connection.AbstractConnection.send_packed_command = async_send  # type: ignore[method-assign]


def count(kind: str, name: str, factory: Callable[[], Any], client: Any, n: int) -> dict[str, Any]:
    loop = asyncio.new_event_loop() if kind == "asgi" else None
    driver = make_driver(kind, factory(), loop)
    for _ in range(3):
        driver.once()  # first window opened, scripts loaded
    before = _commandstats(client)
    with _counting_round_trips() as trips:
        driver.run(n)
    after = _commandstats(client)
    if loop is not None:
        loop.close()
    per_command = {
        cmd: (after.get(cmd, 0) - before.get(cmd, 0)) / n
        for cmd in after
        if after.get(cmd, 0) != before.get(cmd, 0)
    }
    return {
        "kind": kind,
        "variant": name,
        "trips": trips[0] / n,
        "commands": {k: round(v, 3) for k, v in sorted(per_command.items())},
    }


def variants() -> list[tuple[str, str, Callable[[], Any]]]:
    rf_asgi = apps.starlette_restfault
    rf_wsgi = apps.flask_restfault

    def uri() -> str:
        return apps._redis_uri()

    def lazy(builder: Callable[..., Callable[[], Any]], **options: Any) -> Callable[[], Any]:
        return lambda: builder(storage_uri=uri(), default_limits=apps.GENEROUS, **options)()

    def denied(builder: Callable[..., Callable[[], Any]], strategy: str) -> Callable[[], Any]:
        # One request a day: spent by the warm-up, denied for every measured request.
        return lambda: builder(storage_uri=uri(), default_limits="1/day", strategy=strategy)()

    def two_limits(builder: Callable[..., Callable[[], Any]]) -> Callable[[], Any]:
        return lambda: builder(storage_uri=uri(), default_limits=[apps.GENEROUS, "1000000/hour"])()

    result: list[tuple[str, str, Callable[[], Any]]] = []
    for kind, builder in (("asgi", rf_asgi), ("wsgi", rf_wsgi)):
        for strategy in ("fixed-window", "moving-window", "sliding-window-counter"):
            result.append((kind, f"restfault {strategy}", lazy(builder, strategy=strategy)))
            result.append((kind, f"restfault {strategy} denied", denied(builder, strategy)))
        result.append((kind, "restfault fixed-window, 2 limits", two_limits(builder)))
    result.append(
        ("asgi", "slowapi-decorator", apps.starlette_slowapi("decorator", storage="redis"))
    )
    result.append(
        ("asgi", "slowapi-middleware", apps.starlette_slowapi("middleware", storage="redis"))
    )
    result.append(("wsgi", "flask-limiter", apps.flask_limiter(storage="redis")))
    return result
