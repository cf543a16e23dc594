"""The API's clients: ``examples/client_demo.py`` (restfault.client, as EXAMPLES.md's "The
client" says, and ``make demo-client``) and the seeds' own JavaScript client code
(``seed_clients.mjs``: bkend's ``refreshAccessToken`` and both ``fetchWithRetry`` snippets,
run with Node), against both apps under their real servers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.examples.apps import APPS, Api
from tests.servers import ROOT

pytestmark = pytest.mark.slow

# The settings the demo expects (EXAMPLES.md): bkend codes, one email per 2 s, 2 s sessions.
DEMO = {
    "RESTFAULT_STYLE": "bkend",
    "RESTFAULT_EMAIL_LIMITS": "1/2seconds",
    "EXAMPLE_SESSION_TTL": "2",
}
NODE = shutil.which("node")
SEED_CLIENTS = Path(__file__).with_name("seed_clients.mjs")


def run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``argv`` in a process group of its own (stopped whole if it outlives
    ``timeout``); its exit status and output."""
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{argv} ran past {timeout} s:\n{output}")
    return process.returncode, output


@pytest.mark.parametrize("app", APPS)
def test_the_client_demo_walks_the_api(example_servers: Callable[..., Api], app: str) -> None:
    api = example_servers(app, **DEMO)
    status, output = run([sys.executable, "examples/client_demo.py", api.base_url], 60)
    assert status == 0, output
    assert "FAILED" not in output
    assert output.count("  ok: ") == 8, output
    assert "NotFoundException TABLE_NOT_FOUND" in output
    assert "401 TOKEN_EXPIRED" in output
    assert "answered 429: waiting" in output
    assert output.rstrip().endswith("every step behaved")


def test_the_client_demo_says_when_the_sessions_last_too_long(
    example_servers: Callable[..., Api],
) -> None:
    api = example_servers("starlette", RESTFAULT_STYLE="bkend")
    status, output = run([sys.executable, "examples/client_demo.py", api.base_url], 60)
    assert status == 2, output
    assert "The session lasts 900 s: start the app with" in output
    assert "EXAMPLE_SESSION_TTL=2" in output


def test_make_demo_client() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("make demo-client runs the .venv that make install creates")
    status, output = run([make, "--no-print-directory", "demo-client"], 120)
    assert status == 0, output
    assert "every step behaved" in output


# -- the seeds' JavaScript ------------------------------------------------------------------


def node_version() -> tuple[int, ...]:
    if NODE is None:
        return ()
    version = subprocess.run(
        [NODE, "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    return tuple(int(part) for part in version.stdout.strip().lstrip("v").split("."))


@pytest.mark.skipif(
    node_version() < (18,),
    reason="node 18 or later is not installed: the seeds' JavaScript snippets need its fetch",
)
@pytest.mark.parametrize("style", ["bkend", "dreamfactory"])
@pytest.mark.parametrize("app", APPS)
def test_the_seeds_client_code_ends_in_success(
    example_servers: Callable[..., Api], app: str, style: str
) -> None:
    api = example_servers(app, RESTFAULT_STYLE=style, RESTFAULT_EMAIL_LIMITS="1/2seconds")
    assert NODE is not None
    status, output = run([NODE, str(SEED_CLIENTS), api.base_url], 60)
    assert status == 0, output
    report = json.loads(output)
    assert report["refreshAccessToken"] == {"profile": 200, "user": "ada@example.com"}
    assert report["unknownRefreshToken"] == "Re-login is required"
    for snippet in ("bkend", "dreamfactory"):
        walk = report[f"fetchWithRetry ({snippet})"]
        assert {status for status, _ in walk["answers"]} == {202}
        assert all(body == {"queued": True} for _, body in walk["answers"])
        # each 429 met was waited out and tried again, until a 202
        seen = walk["seen"]
        assert 429 in seen
        assert seen[-1] == 202
        assert set(seen) == {202, 429}
