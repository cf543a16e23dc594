"""Who a request is: the client address (through trusted proxies only) and bounded keys."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from ._settings import Network

__all__ = ["client_address", "safe_key"]

_MAX_KEY_LENGTH = 256


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The client's address: the peer, or — only through trusted proxies — X-Forwarded-For.

    The header is read right to left, skipping trusted hops; the first address that is not
    a trusted proxy is the client. From an untrusted peer the header is ignored, so a
    client cannot pick its own key.
    """
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _is_trusted(address, trusted):
        return address
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            return address  # a malformed hop: stop at the last address we can vouch for
        text = str(ip)
        if not _is_trusted(text, trusted):
            return text
        address = text
    return address


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    ip = _parse_ip(address)
    return ip is not None and any(ip in network for network in trusted)


def safe_key(value: Any) -> str:
    """A key_func's result as a bounded storage key (None means the client address)."""
    text = str(value)
    if len(text) <= _MAX_KEY_LENGTH:
        return text
    # Hash rather than cut, so that two long keys with one prefix stay two budgets.
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
