"""Where Starlette's router hands requests to endpoints: restfault's dispatch points.

Starlette (and FastAPI) decide routing once — first full match wins, through ``Host``,
``Mount``, mounted sub-apps and FastAPI's included routers. restfault does not match
routes itself: it walks the route tree once (again only when the app's route list
grows) and puts a ``Dispatch`` point where each route calls its endpoint, so a request is
admitted knowing exactly the endpoint the router chose, with its path parameters.

Mounted Starlette and FastAPI apps get restfault's exception handlers, so they answer
errors with the envelope as their routes would in the parent — unless they have a
``RestFault`` of their own, which then answers for them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Mount, Route, Router, WebSocketRoute

from ._asgi_state import STATE_KEY, Dispatch
from ._logging import logger
from ._registry import endpoint_name, reachable

if TYPE_CHECKING:
    from ._asgi import Pipeline
    from .starlette import RestFault

__all__ = ["Answered", "Routes"]

_MAX_DEPTH = 16  # middleware wrappers followed to find a mounted app


class Answered(Response):
    """What a FastAPI route handler (or an exception handler) returns when restfault has
    answered the request: nothing more is sent."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


class Routes:
    """The dispatch points of one app's route tree, put in place before it serves."""

    def __init__(self, restfault: RestFault, app: Starlette, pipeline: Pipeline) -> None:
        self.restfault = restfault
        self.app = app
        self.pipeline = pipeline
        self._registry = restfault.core.registry
        # Every route reached calls its endpoint with no middleware of its own, every
        # mount leads to routes or to an app without user middleware (see ``_walk``).
        self._bare = True
        self._walked = -1
        self._declared = False
        # Where a route (or a mount) calls its endpoint: a Dispatch point goes there when
        # requests are admitted at the router (``_place``).
        self._points: list[tuple[Route | Mount | Host, Any]] = []
        self._warned: set[Any] = set()

    def prepare(self) -> None:
        """Walk the routes unless neither the app's route list nor whether an endpoint has
        a limit changed (cheap per request)."""
        count = len(self.app.router.routes)
        registry = self._registry
        if count == self._walked and registry.any_declared is self._declared:
            return
        self._walked = count
        self._declared = registry.any_declared
        reached: set[Any] = set()
        self._bare = True
        self._points = []
        self._walk(self.app.router.routes, reached)
        self.pipeline.bare_routes = self._bare
        self.pipeline.settle()
        self._place()
        for function in registry.declared() - reached - self._warned:
            self._warned.add(function)
            logger.warning(
                "restfault: %s has a limit or exemption but no route of the app leads to it; "
                "decorate the function the route is given (check the decorator order)",
                endpoint_name(function),
            )

    def _place(self) -> None:
        """Dispatch points where the router hands requests over, when requests are
        decided there: not while nothing is admitted (no limit, no maintenance mode), nor
        while every request is decided before routing (``Core.admits_unrouted``). Then a
        request reaches its endpoint as it would without restfault."""
        wanted = self.restfault.core.admits and not self.pipeline.decides_before_routing
        for holder, endpoint in self._points:
            app = holder.app
            if isinstance(app, Dispatch):
                if not wanted:
                    holder.app = app.app
            elif wanted:
                holder.app = Dispatch(app, endpoint)

    def _walk(self, routes: Iterable[BaseRoute], reached: set[Any]) -> None:
        for route in routes:
            if isinstance(route, WebSocketRoute):
                continue
            if isinstance(route, Route):
                reached.update(reachable(route.endpoint))
                # A function: Starlette's own wrapper of the endpoint; anything else is
                # route-level middleware (or an ASGI endpoint class) around it.
                self._bare = self._bare and _bare_endpoint(_undispatched(route.app))
                self._points.append((route, route.endpoint))
                _admit_in_handler(route)
            elif isinstance(route, Mount | Host):
                self._mounted(route, reached)
            else:
                included = getattr(route, "original_router", None)  # FastAPI's include_router
                if included is not None:
                    self._walk(included.routes, reached)
                else:
                    self._bare = False  # a route class restfault does not know

    def _mounted(self, route: Mount | Host, reached: set[Any]) -> None:
        sub = _find_app(route.app)
        if sub is not route.app and not isinstance(route.app, Router):
            self._bare = False  # middleware around the mounted app, or another ASGI app
        elif sub is not None and sub.user_middleware:
            self._bare = False
        if sub is not None and getattr(sub.state, "restfault", None) is not None:
            # It has a RestFault of its own: a request entering it is dispatched here.
            self._points.append((route, sub))
            return
        if sub is not None:
            self.restfault.install_handlers(sub, top=False)
        routes = route.routes
        if sub is not None or routes:
            self._walk(routes, reached)
        else:  # any other ASGI app: an endpoint itself
            self._points.append((route, _undispatched(route.app)))


def _undispatched(app: Any) -> Any:
    """A route's app as the app gave it: without the Dispatch point restfault put there."""
    return app.app if isinstance(app, Dispatch) else app


def _bare_endpoint(app: Any) -> bool:
    """A route's app is Starlette's own wrapper of its endpoint (a function), or a class
    based endpoint: no route-level middleware around it."""
    return inspect.isfunction(app) or (inspect.isclass(app) and issubclass(app, HTTPEndpoint))


def _find_app(app: Any) -> Starlette | None:
    """The Starlette (or FastAPI) app a Mount leads to, through middleware wrappers."""
    for _ in range(_MAX_DEPTH):
        if isinstance(app, Starlette):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _admit_in_handler(route: Route) -> None:
    """FastAPI builds the handlers of included routers' routes from ``get_route_handler``
    (its documented extension point): admit there too. A request is admitted once."""
    get_route_handler: Callable[[], Any] | None = getattr(route, "get_route_handler", None)
    if get_route_handler is None or getattr(get_route_handler, "restfault", False):
        return
    endpoint = route.endpoint

    def admitting_route_handler() -> Callable[[Request], Any]:
        handler = get_route_handler()

        async def admitted(request: Request) -> Any:
            state = request.scope.get(STATE_KEY)
            if (
                state is not None
                and not state.admitted
                and await state.pipeline.admit(state, endpoint)
            ):
                return Answered()
            return await handler(request)

        return admitted

    admitting_route_handler.restfault = True  # type: ignore[attr-defined]
    setattr(route, "get_route_handler", admitting_route_handler)  # noqa: B010 - an instance's own
