"""The public names of shared/API.md exist, exactly, with the meanings it gives them.

``__all__`` is checked for equality, not for a superset: a name added or dropped from
the public surface is a decision this test makes visible.
"""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import restfault
import restfault.asgi
import restfault.client
import restfault.flask
import restfault.openapi
import restfault.starlette
import restfault.wsgi

# API.md §1-§3, and what the package adds beside them (ConfigurationError, the types its
# functions return, the batch helpers).
PUBLIC_NAMES = [
    "BadRequestException",
    "BatchException",
    "ConfigurationError",
    "ConflictResourceException",
    "ErrorResponse",
    "ForbiddenException",
    "InternalServerErrorException",
    "InvalidJsonException",
    "NotFoundException",
    "NotImplementedException",
    "RateLimitDecision",
    "RestException",
    "ServiceUnavailableException",
    "TooManyRequestsException",
    "Translations",
    "UnauthorizedException",
    "arun_batch",
    "batch_mode",
    "current_request_id",
    "query_param",
    "raise_single_error",
    "render_error",
    "run_batch",
]
MODULE_NAMES: list[tuple[ModuleType, list[str]]] = [
    (restfault.asgi, ["RestFaultMiddleware"]),
    (restfault.wsgi, ["RestFaultMiddleware"]),
    (restfault.starlette, ["RestFault"]),
    (restfault.flask, ["RestFault"]),
    (restfault.openapi, ["envelope_schema", "error_responses", "with_error_responses"]),
    (restfault.client, ["AsyncClient", "Client", "Retry", "Session", "raise_for_error"]),
]


def test_all_is_exactly_the_public_names() -> None:
    assert restfault.__all__ == sorted(PUBLIC_NAMES)
    for name in restfault.__all__:
        assert hasattr(restfault, name), name


@pytest.mark.parametrize(
    ("module", "names"), MODULE_NAMES, ids=[m.__name__ for m, _ in MODULE_NAMES]
)
def test_each_adapter_modules_all_is_exact(module: ModuleType, names: list[str]) -> None:
    assert module.__all__ == sorted(names)
    for name in names:
        defined_in = getattr(module, name).__module__
        if module is restfault.client:  # loaded on first use from private modules
            assert defined_in.startswith("restfault._client"), name
        else:
            assert defined_in == module.__name__, name


@pytest.mark.parametrize(
    "middleware",
    [restfault.asgi.RestFaultMiddleware, restfault.wsgi.RestFaultMiddleware],
    ids=["asgi", "wsgi"],
)
def test_framework_neutral_middlewares(middleware: type) -> None:
    parameters = inspect.signature(middleware).parameters
    assert list(parameters) == ["app", "options"]
    assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD


@pytest.mark.parametrize(
    "cls", [restfault.flask.RestFault, restfault.starlette.RestFault], ids=["flask", "starlette"]
)
@pytest.mark.parametrize("name", ["init_app", "limit", "exempt", "translate"])
def test_adapters_expose_the_decorators(cls: type, name: str) -> None:
    assert callable(getattr(cls, name))
    assert getattr(cls, name).__doc__, name  # documented, as public names are
