"""restfault: DreamFactory- and bkend-style error envelopes, rate limits and batch errors.

Adapters live in their own modules so that importing restfault imports no framework:
``restfault.starlette`` (Starlette, FastAPI), ``restfault.flask``, ``restfault.asgi`` and
``restfault.wsgi`` (any ASGI or WSGI application).
"""

from ._batch import arun_batch, batch_mode, raise_single_error, run_batch
from ._errors import (
    BadRequestException,
    BatchException,
    ConfigurationError,
    ConflictResourceException,
    ForbiddenException,
    InternalServerErrorException,
    InvalidJsonException,
    NotFoundException,
    NotImplementedException,
    RestException,
    ServiceUnavailableException,
    TooManyRequestsException,
    UnauthorizedException,
)
from ._limiting import RateLimitDecision
from ._params import query_param
from ._render import ErrorResponse, render_error
from ._request_id import current_request_id
from ._translate import Translations

__version__ = "0.1.0"

__all__ = [
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
