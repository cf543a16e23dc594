"""Small HTTP facts both drivers share: media types, header hygiene, status lines."""

from __future__ import annotations

from collections.abc import Iterable

from ._errors import reason_phrase

__all__ = ["clean_headers", "encode_headers", "is_json_media_type", "status_line"]


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json``, ``application/problem+json`` and other ``+json`` types."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def clean_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """CR and LF blanked, so no value can start a header (or a response) of its own."""
    return [(k, v.replace("\r", " ").replace("\n", " ")) for k, v in headers]


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """ASGI header pairs of ``clean_headers``: lower-case latin-1 names and values."""
    return [
        (name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace"))
        for name, value in clean_headers(headers)
    ]


def status_line(status: int) -> str:
    """``"404 Not Found"``: a WSGI status line."""
    return f"{status} {reason_phrase(status)}"
