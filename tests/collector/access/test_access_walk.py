"""Every route of the app × every role: 401 without a key, 403 with a too-weak role.

The routes come from ``app.routes`` (flattened), so a route added anywhere is walked; a route
that declares no access level (``requires``/``customer_only``/``public``) fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from collector.access import Role
from collector.api.access import (
    Access,
    flat_routes,
    require_role,
    route_access,
)
from collector.api.app import DOC_PATHS
from tests.collector.access.conftest import bearer

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def walk(app: FastAPI) -> list[tuple[str, str, Access | None]]:
    """``(method, concrete path, declared access)`` of every route; ``None``: undeclared."""
    out: list[tuple[str, str, Access | None]] = []
    for route in flat_routes(app.routes):
        path = _PARAM.sub("1", route.path)
        access = route_access(route, DOC_PATHS)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((method, path, access))
    return out


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body: Any = {} if method in {"POST", "PUT", "PATCH"} else None
    return client.request(method, path, headers=headers, json=body).status_code


def test_every_route_declares_its_access(app_factory: Callable[..., FastAPI]) -> None:
    """No route of the app is left without exactly one access declaration."""
    routes = walk(app_factory())
    assert len(routes) > 30
    undeclared = [(m, p) for m, p, a in routes if a is None]
    assert undeclared == [], f"routes without requires()/customer_only()/public(): {undeclared}"


def test_walk_catches_an_undeclared_route(app_factory: Callable[..., FastAPI],
                                          keys: dict[Role, str]) -> None:
    """A route without a declaration is reported by the walk and is admin-only meanwhile."""
    app = app_factory()
    extra = APIRouter()

    @extra.post("/forgotten")
    def forgotten() -> dict[str, str]:
        return {"ok": "yes"}

    @extra.post("/declared", dependencies=[Depends(require_role(Role.BILLING))])
    def declared() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(extra)
    assert ("POST", "/forgotten", None) in walk(app)
    assert ("POST", "/declared", Access("staff", Role.BILLING)) in walk(app)
    client = TestClient(app)
    assert client.post("/forgotten").status_code == 401
    assert client.post("/forgotten", headers=bearer(keys[Role.BILLING])).status_code == 403
    assert client.post("/forgotten", headers=bearer(keys[Role.ADMIN])).status_code == 200
    assert client.post("/declared", headers=bearer(keys[Role.TECHNICIAN])).status_code == 403
    assert client.post("/declared", headers=bearer(keys[Role.BILLING])).status_code == 200


def test_every_route_refuses_missing_and_weak_credentials(
    app_factory: Callable[..., FastAPI], keys: dict[Role, str]
) -> None:
    """Staff routes: 401 without/with a bad key, 403 below the declared role, never 401/403
    at or above it. Customer routes: 401 without a customer credential, also for staff keys.
    Public routes: never 401/403."""
    client = TestClient(app_factory(), raise_server_exceptions=False)
    problems: list[str] = []
    for method, path, access in walk(client.app):  # type: ignore[arg-type]
        assert access is not None, (method, path)
        anon = _call(client, method, path, {})
        bad = _call(client, method, path, bearer("tally_000000000000_" + "x" * 43))
        if access.kind == "public":
            # A sign-in form refuses the empty credential it was posted with: that 401 is the
            # form's answer, not the middleware's.
            signin_refusal = method == "POST" and path.endswith("/login") and anon == 401
            if anon in (401, 403) and not signin_refusal:
                problems.append(f"{method} {path}: public route answered {anon}")
            continue
        if access.kind == "session":
            # Console pages: only a console session opens them; a bearer key per request never.
            for role, secret in {None: None, **keys}.items():
                status = _call(client, method, path, bearer(secret) if secret else {})
                if status not in (401, 403):
                    problems.append(f"{method} {path} [session] with {role}: {status}")
            continue
        if anon != 401 or bad != 401:
            problems.append(f"{method} {path}: without a valid credential {anon}/{bad}, not 401")
        for role, secret in keys.items():
            status = _call(client, method, path, bearer(secret))
            if access.kind == "customer":
                ok = status == 401
            elif access.role is not None and role.grants(access.role):
                ok = status not in (401, 403)
            else:
                ok = status == 403
            if not ok:
                problems.append(f"{method} {path} [{access}] with {role}: {status}")
            if status >= 500:
                problems.append(f"{method} {path} with {role}: server error {status}")
    assert problems == [], "\n".join(problems)


def test_openapi_declares_the_refusals_and_the_key_scheme(
    app_factory: Callable[..., FastAPI],
) -> None:
    """Staff operations document 401/403/413/422 as ErrorOut and the staff key scheme;
    portal operations document 401 (JSON or the HTML sign-in page) but no 403."""
    doc = TestClient(app_factory()).get("/openapi.json").json()
    op = doc["paths"]["/billing/plans"]["post"]
    assert {"401", "403", "413", "422"} <= set(op["responses"])
    ref = op["responses"]["403"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ErrorOut"
    assert {"staffKey": []} in op["security"]
    portal = doc["paths"]["/portal/invoices"]["get"]["responses"]
    assert "403" not in portal
    assert set(portal["401"]["content"]) == {"application/json", "text/html"}
