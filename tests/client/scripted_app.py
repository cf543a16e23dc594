"""A tiny ASGI app that answers what the request's ``X-Script`` header asks, in order.

``X-Script`` is a JSON list of replies ``[status, [[name, value], ...], body]``;
``X-Script-Id`` names the conversation. The n-th request of a conversation gets the
n-th reply (the last one repeats), with ``X-Try: n``, ``X-Path`` (the path asked for) and
``X-Body-Length`` (the bytes of request body received).
Run it with uvicorn's ``--no-date-header`` so that a reply's own ``Date`` is the only one.

This is what a proxy, a maintenance page or another server's 503 looks like, which the
example apps never answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_tries: dict[str, int] = {}


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
            await send({"type": f"{event}.complete"})
            if event == "lifespan.shutdown":
                return
    received = 0
    while True:
        message = await receive()
        received += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    script = json.loads(headers.get("x-script", '[[200, [], ""]]'))
    conversation = headers.get("x-script-id", "")
    _tries[conversation] = tries = _tries.get(conversation, 0) + 1
    status, reply_headers, body = script[min(tries, len(script)) - 1]
    payload = body.encode("utf-8")
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply_headers]
    raw += [(b"x-try", str(tries).encode()), (b"x-path", scope["raw_path"])]
    raw.append((b"x-body-length", str(received).encode()))
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
