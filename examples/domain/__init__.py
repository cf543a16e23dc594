"""The example API's domain, written once for both apps: settings, keys and plans, users
and sessions, validation, the SQLite database and its translations.

It raises restfault's exceptions and imports no web framework (``settings``: the
environment; ``store``: keys, users, tokens, the database, validation; ``api``: the
endpoints' work). ``starlette_app/app.py``
and ``flask_app/app.py`` are glue: each reads a request's parts (a header, a path
parameter, the JSON body), calls a method of ``ExampleApi`` and answers what it returns;
restfault turns what it raises into the envelope. shared/EXAMPLES.md is the contract.
"""

from __future__ import annotations

from .api import ExampleApi
from .settings import Settings
from .store import bearer_token, required_text, unique_constraint

__all__ = ["ExampleApi", "Settings", "bearer_token", "required_text", "unique_constraint"]
