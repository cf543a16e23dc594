"""The public names of shared/API.md exist, with the meanings it gives them."""

from __future__ import annotations

import inspect

import pytest

import restfault
from restfault import asgi, wsgi

API_NAMES = {
    "RestException",
    "BadRequestException",
    "InvalidJsonException",
    "BatchException",
    "UnauthorizedException",
    "ForbiddenException",
    "NotFoundException",
    "ConflictResourceException",
    "TooManyRequestsException",
    "InternalServerErrorException",
    "NotImplementedException",
    "ServiceUnavailableException",
    "render_error",
    "run_batch",
    "arun_batch",
    "current_request_id",
}


def test_all_holds_every_api_name() -> None:
    assert set(restfault.__all__) >= API_NAMES
    for name in restfault.__all__:
        assert hasattr(restfault, name), name


def test_all_has_no_private_names() -> None:
    assert not [name for name in restfault.__all__ if name.startswith("_")]


@pytest.mark.parametrize("module", [asgi, wsgi])
def test_framework_neutral_middlewares(module: object) -> None:
    middleware = module.RestFaultMiddleware  # type: ignore[attr-defined]
    assert list(inspect.signature(middleware).parameters)[:1] == ["app"]


def test_adapters_expose_the_decorators() -> None:
    from restfault.flask import RestFault as FlaskRestFault
    from restfault.starlette import RestFault as StarletteRestFault

    for cls in (FlaskRestFault, StarletteRestFault):
        for name in ("init_app", "limit", "exempt", "translate"):
            assert callable(getattr(cls, name)), (cls, name)
