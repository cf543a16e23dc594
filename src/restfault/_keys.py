"""Who a request is: the client address (through trusted proxies only) and bounded keys."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from typing import Any

from ._validate import Network

__all__ = ["address_key", "client_address", "safe_key"]

_MAX_KEY_LENGTH = 256
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The client's address: the peer, or — only through trusted proxies — X-Forwarded-For.

    The header is read right to left, skipping trusted hops; the first address that is not
    a trusted proxy is the client. From an untrusted peer the header is ignored, so a
    client cannot pick its own key. IPv4-mapped IPv6 addresses (``::ffff:10.0.0.5``, what
    a dual-stack listener reports for IPv4 peers) count as their IPv4 address.
    """
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _is_trusted(address, trusted):
        return address
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            return address  # a malformed hop: stop at the last address we can vouch for
        text = str(ip)
        if not _is_trusted(text, trusted):
            return text
        address = text
    return address


@functools.lru_cache(maxsize=4096)
def address_key(address: str, ipv6_subnet: int | None) -> str:
    """The rate-limit key of a client address.

    IPv4 (and IPv4-mapped IPv6, recognised by range) is keyed by the address; IPv6 by its
    ``ipv6_subnet`` prefix, so one host cannot rotate through its allocation (a /56 is a
    typical customer's); anything that is no IP address (a Unix socket, ``unknown``) as is.
    """
    ip = parse_ip(address)
    if ip is None:
        return address
    if ip.version == 4 or ipv6_subnet is None:
        return str(ip)
    return str(ipaddress.IPv6Network((ip, ipv6_subnet), strict=False))


def parse_ip(text: str) -> IP | None:
    """An address out of ``text`` (``[v6]:port`` and ``v4:port`` too); None when there is none."""
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6:
        mapped = ip.ipv4_mapped  # ::ffff:0:0/96, by range whatever the notation
        if mapped is not None:
            return mapped
    return ip


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    ip = parse_ip(address)
    return ip is not None and any(ip in network for network in trusted)


def safe_key(value: Any) -> str:
    """A key_func's result as a bounded storage key (None means the client address)."""
    text = str(value)
    if len(text) <= _MAX_KEY_LENGTH:
        return text
    # Hash rather than cut, so that two long keys with one prefix stay two budgets.
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
