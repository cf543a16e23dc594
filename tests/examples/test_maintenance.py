"""The maintenance file (shared/EXAMPLES.md, ``EXAMPLE_MAINTENANCE_FILE``): while it exists,
every request but ``/api/v2/health`` answers 503 ``SERVICE_UNAVAILABLE`` with
``Retry-After`` = the file's content when it is a whole number, else 60 — checked on every
request, so one running server per app walks the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.examples.apps import LOGIN, PROFILE, TABLE, Api, Factory, error_of, needs_maintenance

pytestmark = [pytest.mark.slow, needs_maintenance]

# Every kind of request: keyed or not, routed or not, limited per endpoint or not.
REQUESTS = [
    ("GET", TABLE, "pk_demo"),
    ("POST", TABLE, "sk_demo"),
    ("GET", TABLE, None),
    ("GET", "/api/v2/openapi.json", None),
    ("POST", "/api/v2/email", "pk_demo"),
    ("POST", LOGIN, "pk_demo"),
    ("GET", PROFILE, "pk_demo"),
    ("GET", "/api/v2/nowhere", None),
    ("PUT", "/api/v2/boom", "pk_demo"),
]


@pytest.fixture(scope="module")
def maintenance_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("maintenance") / "maintenance"


@pytest.fixture
def served(example: Factory, maintenance_file: Path) -> Iterator[Api]:
    """The app watching ``maintenance_file``, which is gone again after the test."""
    api = example(EXAMPLE_MAINTENANCE_FILE=str(maintenance_file))
    yield api
    maintenance_file.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("content", "retry_after"),
    [
        ("120", "120"),
        (" 7\n", "7"),
        ("1", "1"),
        ("soon", "60"),
        ("", "60"),
        ("-5", "60"),
        ("+5", "60"),
        ("1.5", "60"),
        ("\u0664\u0662", "60"),  # Arabic-Indic digits: no whole number in ASCII
        ("0", "1"),  # 0 seconds would mean "no maintenance" to restfault: the least wait
    ],
)
def test_the_maintenance_file(
    served: Api, maintenance_file: Path, content: str, retry_after: str
) -> None:
    assert served.get(TABLE, key="pk_demo").status_code == 200
    maintenance_file.write_text(content, "utf-8")
    for method, path, key in REQUESTS:
        response = served.request(method, path, key=key)
        error_of(response, 503, "SERVICE_UNAVAILABLE")
        assert response.headers["retry-after"] == retry_after, (method, path)
    health = served.get("/api/v2/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    maintenance_file.unlink()
    assert served.get(TABLE, key="pk_demo").status_code == 200
