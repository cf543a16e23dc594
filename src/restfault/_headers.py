"""The headers an envelope carries: what an exception may set, and what is kept of a
framework error converted into an envelope.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

__all__ = ["check_header_name", "converted_headers", "header_field", "header_fields"]

# RFC 9110 §5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What no field value can carry (RFC 9110 §5.5): control characters but HTAB (CR and LF
# would start a field of their own) and anything outside Latin-1.
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
# Headers of the envelope's own body, which restfault writes: an exception's copy would
# be a second, conflicting Content-Length or Content-Type on the response.
_ENVELOPE_HEADERS = frozenset(
    {"content-type", "content-length", "transfer-encoding", "content-encoding"}
)
# Headers of a framework exception that describe the body the envelope replaces (notably
# werkzeug's text/html Content-Type, the gzip encoding or the digest of a converted error
# page); every other header (Allow, WWW-Authenticate, Retry-After, the app's own) is kept.
_BODY_HEADERS = _ENVELOPE_HEADERS | frozenset(
    {
        "content-range",
        "content-disposition",
        "content-location",
        "content-md5",
        "content-digest",
        "repr-digest",
        "digest",
    }
)


def _blank(match: re.Match[str]) -> str:
    return " " if match.group() <= "\x7f" else "?"


def header_field(name: object, value: object) -> tuple[str, str]:
    r"""One response header as a ``(name, value)`` pair of str fit for the wire.

    An int value becomes its decimal text. Characters a field value cannot carry (control
    characters, which could start a header of their own, and anything outside Latin-1) are
    blanked to a space or ``?`` rather than refused: values often echo client input. A
    name that is not a str token (RFC 9110 §5.1) or one of the envelope's own body headers
    (``Content-Type``, ``Content-Length``, ``Transfer-Encoding``, ``Content-Encoding``),
    or a value that is neither str nor int, is a bug in the app: TypeError or ValueError,
    naming the header.

    >>> header_field("Retry-After", 5)
    ('Retry-After', '5')
    >>> header_field("X-Echo", "a\r\nSet-Cookie: x")
    ('X-Echo', 'a  Set-Cookie: x')
    """
    if not isinstance(name, str):
        raise TypeError(f"header names are str, not {type(name).__name__}: {name!r}")
    check_header_name(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return name, str(int(value))
    if not isinstance(value, str):
        raise TypeError(
            f"header {name!r} has a {type(value).__name__} value ({value!r}): "
            "header values are str or int"
        )
    # Printable ASCII, by far the most common value, needs no regular expression.
    if not (value.isascii() and value.isprintable()) and _UNSAFE_VALUE.search(value):
        value = _UNSAFE_VALUE.sub(_blank, value)
    return name, value


# The same few names come back on every error (Retry-After, WWW-Authenticate...).
@functools.lru_cache(maxsize=256)
def check_header_name(name: str) -> None:
    """ValueError unless ``name`` may name a header of an envelope (see header_field)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r} is not a header name (an RFC 9110 token)")
    if name.lower() in _ENVELOPE_HEADERS:
        raise ValueError(
            f"{name!r} describes the envelope's body, which restfault writes "
            "(a style chooses its content type)"
        )


def header_fields(
    headers: Mapping[str, str | int] | Iterable[tuple[str, str | int]] | None,
) -> dict[str, str]:
    """``headers`` (a mapping or pairs) as a dict made by :func:`header_field`."""
    if not headers:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return dict(header_field(name, value) for name, value in pairs)


def converted_headers(status: int, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers of a framework's error (status ``status``) that still hold for the
    envelope replacing it."""
    kept: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        # A 416's Content-Range ("bytes */N") is kept: it gives the length of the whole
        # representation, not of the body replaced (RFC 9110 §15.5.17).
        if lowered in _BODY_HEADERS and not (status == 416 and lowered == "content-range"):
            continue
        try:
            name, value = header_field(name, value)
        except (TypeError, ValueError):
            continue  # no server could send it either: the envelope goes without it
        # A repeated list-valued field (two WWW-Authenticate challenges) is one field with
        # both values (RFC 9110 §5.3); Set-Cookie cannot be joined, and keeps the last.
        previous = kept.get(name)
        joinable = previous is not None and name.lower() != "set-cookie"
        kept[name] = f"{previous}, {value}" if joinable else value
    for name, value in kept.items():
        if name.lower() == "allow":
            # Frameworks list methods in set order, which differs from process to process.
            kept[name] = ", ".join(sorted({m.strip() for m in value.split(",") if m.strip()}))
    return kept
