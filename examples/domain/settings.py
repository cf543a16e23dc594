"""The example apps' settings: the environment variables of shared/EXAMPLES.md."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# -- settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The environment variables of EXAMPLES.md, read once when an app is created."""

    style: str = "dreamfactory"
    storage_uri: str = "memory://"
    strategy: str = "fixed-window"
    default_limits: str = "120/minute"
    admin_limits: str = "1200/minute"
    email_limits: str = "3/minute"
    db_limits: str = "1000/hour"
    login_limits: str = "5/15minutes"
    debug: bool = False
    db_path: str | None = None  # None: a fresh temporary file
    session_ttl: int = 900
    refresh_ttl: int = 86400
    maintenance_file: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings; an unset or empty variable keeps its default."""

        def get(name: str, default: str) -> str:
            return environ.get(name) or default

        return cls(
            style=get("RESTFAULT_STYLE", cls.style),
            storage_uri=get("RESTFAULT_STORAGE_URI", cls.storage_uri),
            strategy=get("RESTFAULT_STRATEGY", cls.strategy),
            default_limits=get("RESTFAULT_DEFAULT_LIMITS", cls.default_limits),
            admin_limits=get("RESTFAULT_ADMIN_LIMITS", cls.admin_limits),
            email_limits=get("RESTFAULT_EMAIL_LIMITS", cls.email_limits),
            db_limits=get("RESTFAULT_DB_LIMITS", cls.db_limits),
            login_limits=get("RESTFAULT_LOGIN_LIMITS", cls.login_limits),
            debug=get("RESTFAULT_DEBUG", "0") == "1",
            db_path=environ.get("EXAMPLE_DB") or None,
            session_ttl=seconds(environ, "EXAMPLE_SESSION_TTL", cls.session_ttl),
            refresh_ttl=seconds(environ, "EXAMPLE_REFRESH_TTL", cls.refresh_ttl),
            maintenance_file=environ.get("EXAMPLE_MAINTENANCE_FILE") or None,
        )

    def text_options(self) -> dict[str, Any]:
        """The restfault options whose values are environment text, typed loosely so that
        restfault checks them when the app is created (a bad one is a ConfigurationError
        naming it) rather than mypy when this file is."""
        return {"style": self.style, "strategy": self.strategy}


def seconds(environ: Mapping[str, str], name: str, default: int) -> int:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name}={text!r} must be a whole number of seconds")
    return int(text)
