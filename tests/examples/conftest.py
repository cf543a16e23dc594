"""Fixtures of the example apps' tests: the apps under their real servers, uvicorn
(Starlette) and gunicorn (Flask).

A server is started once per module and environment (``example(**env)`` caches it), so
the whole contract walk costs a handful of processes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.examples.apps import APPS, BASE_ENV, Api, Factory, example_server
from tests.servers import running


@pytest.fixture(scope="module")
def example_servers() -> Iterator[Callable[..., Api]]:
    """``start(app, **env)``: the app running with ``BASE_ENV`` updated by ``env``, cached."""
    started: dict[tuple[str, tuple[tuple[str, str], ...]], Api] = {}
    with contextlib.ExitStack() as stack:

        def start(app: str, **env: str) -> Api:
            full = {**BASE_ENV, **env}
            key = (app, tuple(sorted(full.items())))
            if key not in started:
                server = stack.enter_context(running(example_server(app, full)))
                api = Api(app, server)
                stack.callback(api.close)
                started[key] = api
            return started[key]

        yield start


@pytest.fixture(scope="module", params=APPS)
def app_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def example(example_servers: Callable[..., Api], app_name: str) -> Factory:
    """``example(**env)``: this test's app with that environment."""

    def start(**env: str) -> Api:
        return example_servers(app_name, **env)

    return start


@pytest.fixture
def api(example: Factory) -> Api:
    """The app in the bkend style (codes in the body), limits out of the way, debug off."""
    return example()
