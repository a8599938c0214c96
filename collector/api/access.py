"""How a route declares who may call it, in one dependency.

Every route of the app declares exactly one access level:

* ``requires(Role.BILLING)`` (or any ``Role``): a staff key whose role grants it;
* ``customer_only()``: the customer portal's own authentication (not staff keys);
* ``staff_session()``: the staff console's pages, opened by a console session that a staff
  key started (``collector/api/console_routes.py``), never by a bearer key per request;
* ``public()``: anybody (``/health``, the portal's and the console's sign-in pages).

For example::

    @router.post("/billing/plans", dependencies=[requires(Role.BILLING)])

(``Depends(require_role(Role.BILLING))`` is the same declaration),
or, when the handler wants to know who calls::

    def create(who: Annotated[Principal, requires(Role.ADMIN)]) -> ...

``tests/collector/access/test_access_walk.py`` walks every route of the app and fails for a route
without a declaration. The check itself happens before the body is read, in
``access_middleware`` (it looks the declaration up with ``route_access``); the dependency
re-checks it and hands the handler the ``Principal``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.routing import BaseRoute

from collector.access import Principal, Role

__all__ = [
    "STAFF_SCHEME",
    "Access",
    "Role",
    "customer_only",
    "declarations",
    "flat_routes",
    "principal_of",
    "public",
    "require_role",
    "requires",
    "route_access",
    "staff_session",
]

_MARK = "tally_access"
STAFF_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="staffKey",
    description="A staff API key (`tally_<id>_<secret>`) or a configured staff token.",
)


@dataclass(frozen=True, slots=True)
class Access:
    """The access level a route declares."""

    kind: Literal["public", "customer", "staff", "session"]
    role: Role | None = None

    def __str__(self) -> str:
        return f"staff:{self.role}" if self.role else self.kind


def _mark(fn: Callable[..., Any], access: Access) -> Callable[..., Any]:
    setattr(fn, _MARK, access)
    return fn


def principal_of(request: Request) -> Principal | None:
    """The staff principal the middleware authenticated for this request, if any."""
    p = request.scope.get("state", {}).get("principal")
    return p if isinstance(p, Principal) else None


@cache
def _role_dependency(role: Role) -> Callable[..., Principal]:
    def staff_role(request: Request, _: Any = Depends(STAFF_SCHEME)) -> Principal:  # noqa: B008
        who = principal_of(request)
        if who is None:
            raise HTTPException(
                401, "staff key required", headers={"WWW-Authenticate": 'Bearer realm="tally"'}
            )
        if not who.role.grants(role):
            raise HTTPException(403, f"this route needs the {role} role; the key has {who.role}")
        return who

    staff_role.__name__ = f"requires_{role.value}"
    return _mark(staff_role, Access("staff", role))


def requires(role: Role) -> Any:
    """Declare that a route needs a staff key of ``role`` (or a role that grants it)."""
    return Depends(_role_dependency(role))


def require_role(role: Role) -> Callable[..., Principal]:
    """The same declaration as a bare dependency: ``Depends(require_role(Role.BILLING))``."""
    return _role_dependency(role)


def _customer() -> None:
    """The portal routes authenticate the customer themselves."""


def _public() -> None:
    """Anybody may call the route."""


def _session() -> None:
    """The console's pages check their staff session themselves."""


_mark(_session, Access("session"))
_mark(_customer, Access("customer"))
_mark(_public, Access("public"))


def customer_only() -> Any:
    """Declare that a route is for customers (portal authentication), never for staff keys."""
    return Depends(_customer)


def staff_session() -> Any:
    """Declare a staff console page: a console session (started with a staff key) opens it,
    and the console's ``authorize`` decides by the key's role."""
    return Depends(_session)


def public() -> Any:
    """Declare that anybody may call a route."""
    return Depends(_public)


def _declared(dependant: Dependant) -> list[Access]:
    found: list[Access] = []
    for sub in dependant.dependencies:
        mark = getattr(sub.call, _MARK, None)
        if isinstance(mark, Access):
            found.append(mark)
        found.extend(_declared(sub))
    return found


def flat_routes(routes: Sequence[BaseRoute]) -> list[Any]:
    """Every route of an app with included routers flattened (FastAPI ≥ 0.160 keeps included
    routers as one entry of ``app.routes``). Each item has ``path``, ``path_format``,
    ``methods``, ``matches(scope)`` and, for API routes, the effective ``dependant``."""
    try:
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415 - newer FastAPI only
    except ImportError:  # pragma: no cover - older FastAPI: app.routes is already flat
        return list(routes)
    return list(iter_route_contexts(routes))


def is_api_route(route: Any) -> bool:
    return isinstance(getattr(route, "original_route", route), APIRoute)


def declarations(route: Any) -> list[Access]:
    """Every access declaration of a route (exactly one is correct)."""
    dependant = getattr(route, "dependant", None) if is_api_route(route) else None
    return _declared(dependant) if isinstance(dependant, Dependant) else []


def route_access(route: Any, public_paths: frozenset[str]) -> Access | None:
    """The access a route declares; the app's documentation routes (``public_paths``) are
    public; ``None`` when a route declares nothing or more than one level (the middleware
    then treats it as admin-only)."""
    found = set(declarations(route))
    if not found and getattr(route, "path", None) in public_paths:
        return Access("public")  # the API documentation (/docs, /redoc, their assets)
    return found.pop() if len(found) == 1 else None
