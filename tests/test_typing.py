"""The public edge is typed for the user's ``mypy --strict``: ``tests/typing/user_code.py``
passes (``make test`` checks it with the project's mypy run) and a misspelt option is a
type error where it is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

TYPING = Path(__file__).parent / "typing"


def test_a_misspelt_option_fails_type_checking() -> None:
    # The project's configuration (strict) and cache, warm after `make typecheck`.
    stdout, _, status = mypy_api.run([str(TYPING / "misspelt_option.py")])
    errors = re.findall(r":(\d+): error: (.*)  \[(.*)\]", stdout)
    assert status == 1, stdout
    assert errors == [
        (
            "13",
            'Unexpected keyword argument "stlye" for "RestFault"; did you mean "style"?',
            "call-arg",
        ),
        (
            "14",
            'Unexpected keyword argument "default_limit" for "RestFault"; '
            'did you mean "default_limits"?',
            "call-arg",
        ),
    ]
