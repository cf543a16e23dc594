"""ASGI messages restfault reads and writes: headers in, envelopes out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._errors import RestException
from ._render import ErrorResponse
from ._translate import http_exception

__all__ = [
    "converted",
    "encode_headers",
    "encode_rate_headers",
    "header",
    "joined_header",
    "send_envelope",
]

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """ASGI header pairs; CR and LF are blanked so no value can start a header of its own."""
    return [
        (
            name.lower().encode("latin-1", "replace"),
            value.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace"),
        )
        for name, value in headers
    ]


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


def encode_rate_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """``encode_headers`` for ``RateLimitDecision.headers()``: ASCII names, and values of
    digits or sanitised structured-field strings, so there is no CR or LF to blank."""
    return [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in headers]


def header(headers: Any, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def joined_header(headers: Any, name: bytes) -> str | None:
    """Every line of a list-valued header, joined in order as RFC 9110 allows: a proxy may
    add its own X-Forwarded-For line after the one the client sent."""
    values = [bytes(value).decode("latin-1") for key, value in headers if key.lower() == name]
    return ", ".join(values) if values else None


def converted(start: Message) -> RestException:
    headers = [
        (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
        for k, v in start.get("headers", ())
    ]
    return http_exception(int(start["status"]), None, headers)
