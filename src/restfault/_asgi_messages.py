"""ASGI messages restfault reads and writes: headers in, envelopes out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._errors import RestException
from ._http import encode_headers
from ._render import ErrorResponse
from ._translate import http_exception

__all__ = [
    "Message",
    "Receive",
    "Scope",
    "Send",
    "converted",
    "header",
    "joined_header",
    "route_path",
    "send_envelope",
]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
RawHeaders = Iterable[tuple[bytes, bytes]]


async def send_envelope(
    send: Send, response: ErrorResponse, extra: list[tuple[str, str]], head: bool
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": encode_headers(response.headers + extra),
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else response.body})


def header(headers: RawHeaders, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def joined_header(headers: RawHeaders, name: bytes) -> str | None:
    """Every line of a list-valued header, joined in order as RFC 9110 allows: a proxy may
    add its own X-Forwarded-For line after the one the client sent."""
    values = [bytes(value).decode("latin-1") for key, value in headers if key.lower() == name]
    return ", ".join(values) if values else None


def converted(start: Message) -> RestException:
    """The RestException standing for a framework's own non-JSON error response."""
    headers = [
        (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
        for k, v in start.get("headers", ())
    ]
    return http_exception(int(start["status"]), None, headers)


def route_path(scope: Scope) -> str:
    """The request's path inside the application: ``path`` without the ``root_path`` a
    server or proxy mounts the app at (``uvicorn --root-path``), as Starlette routes it."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path
