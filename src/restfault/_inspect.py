"""Misconfigurations a process can see for itself, warned about once each.

``memory://`` while the server runs several worker processes (each process then allows
the full limit), proxy headers arriving while ``trusted_proxies`` is empty (every client
behind that proxy shares its budget), and ``trusted_proxies`` that cover every address.
Only the first requests of each process are looked at: a proxy or a worker setup shows
on every request, and nothing is left to pay once they are done.
"""

from __future__ import annotations

from typing import Any

from ._logging import logger
from ._settings import Settings

__all__ = ["Inspections"]

_INSPECTED = 64  # requests per process looked at for misconfigurations (then none)


class Inspections:
    """The misconfiguration warnings of one adapter (a base of ``Policies``)."""

    settings: Settings

    @property
    def limited(self) -> bool:
        raise NotImplementedError

    def __init__(self, settings: Settings) -> None:
        # The first requests of each process are looked at for misconfigurations.
        self.requests_to_inspect = _INSPECTED
        self._warned: set[str] = set()
        if any(network.prefixlen == 0 for network in settings.trusted_proxies):
            self._warn(
                "everyone",
                "restfault: trusted_proxies=%r covers every address, so any client can pick "
                "its own rate-limit key with X-Forwarded-For; list only your proxies' "
                "addresses (e.g. '10.0.0.0/8')",
                [str(n) for n in settings.trusted_proxies],
            )

    def inspect_request(self, multiprocess: bool, forwarded: bool) -> None:
        """Warn, once each, about what the first requests show is misconfigured."""
        self.requests_to_inspect -= 1
        if not self.limited:
            return
        settings = self.settings
        if multiprocess and settings.in_process:
            self._warn(
                "workers",
                "restfault: storage_uri='memory://' while the server runs several worker "
                "processes: each process counts apart and allows the full limit; use a "
                "shared storage such as storage_uri='redis://host:6379'",
            )
        if forwarded and not settings.trusted_proxies and settings.key_func is None:
            self._warn(
                "proxies",
                "restfault: requests arrive with X-Forwarded-For or Forwarded but "
                "trusted_proxies is empty, so every client behind that proxy shares one "
                "rate-limit budget; set trusted_proxies to your proxies' addresses",
            )

    def _warn(self, what: str, message: str, *args: Any) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(message, *args)
