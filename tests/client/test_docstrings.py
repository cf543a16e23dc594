"""The ``>>>`` examples in restfault.client's docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "restfault.client",
    "restfault._client_errors",
    "restfault._client_headers",
    "restfault._client_retry",
]  # the clients' own examples need a server: marked +SKIP


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.failed == 0
    assert results.attempted > 0
