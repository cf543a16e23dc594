"""GET /api/v2/openapi.json, and schemathesis against both example apps under real servers.

The document is the same in both apps (one per style); its error responses are
``restfault.openapi.error_responses`` for the configured style, so schemathesis's
response-schema checks hold every envelope the apps send to the published schema.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from restfault.openapi import error_responses
from tests.servers import Server

from .conftest import raw_request

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Examples per operation: 60 keeps the two runs near 20 s; RELIABILITY_SCHEMATHESIS_EXAMPLES
# raises it for a longer run (docs/reliability.md has the figures for 100).
MAX_EXAMPLES = int(os.environ.get("RELIABILITY_SCHEMATHESIS_EXAMPLES", "60"))
FIGURES: dict[str, str] = {}


@pytest.mark.parametrize("style", ["dreamfactory", "bkend", "problem"])
def test_both_apps_publish_one_document(monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    monkeypatch.setenv("RESTFAULT_STYLE", style)
    from examples.flask_app.app import create_app as flask_app
    from examples.starlette_app.app import create_app as starlette_app

    with TestClient(starlette_app()) as client:
        served = client.get("/api/v2/openapi.json")
    flask_served = flask_app().test_client().get("/api/v2/openapi.json")
    assert served.status_code == flask_served.status_code == 200
    # rate-limited as every endpoint but health (and kept from clients in maintenance)
    assert served.headers["x-ratelimit-limit"] == flask_served.headers["X-RateLimit-Limit"]
    document = served.json()
    assert document == flask_served.get_json()
    assert document["openapi"].startswith("3.1")
    boom = document["paths"]["/api/v2/boom"]["get"]["responses"]
    assert boom["500"] == json.loads(json.dumps(error_responses(500, style=style)[500]))
    assert boom["4XX"] == json.loads(json.dumps(error_responses(style=style)["4XX"]))


@pytest.mark.slow
@pytest.mark.parametrize(("app", "style"), [("starlette", "bkend"), ("flask", "problem")])
def test_schemathesis_finds_nothing(launch: Callable[..., Server], app: str, style: str) -> None:
    if not SCHEMATHESIS.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    server = launch(app, RESTFAULT_STYLE=style)
    url = f"http://127.0.0.1:{server.port}/api/v2/openapi.json"
    argv = [str(SCHEMATHESIS), "--config-file", str(HERE / "schemathesis.toml"), "run", url]
    argv += ["--header", "X-API-Key: sk_demo", "--max-examples", str(MAX_EXAMPLES)]
    argv += ["--seed", "20261122", "--phases", "examples,coverage,fuzzing", "--workers", "1"]
    argv += ["--request-timeout", "10", "--no-color"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    summary = re.search(r"(\d+) generated, (.*)", run.stdout)
    FIGURES[f"{app}/{style}"] = summary.group(0) if summary else run.stdout[-500:]
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert summary is not None
    assert int(summary.group(1)) >= 9 * MAX_EXAMPLES // 2
    assert raw_request(server.port, "GET", "/api/v2/health").status == 200
