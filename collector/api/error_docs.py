"""The error answers of every route, declared in the OpenAPI document.

Every error body is ``{"detail": …}``: a message, or for request validation the list of
problems FastAPI reports. Which codes a route may answer follows from its access declaration
and its method; ``declare_error_responses`` adds them to each route before the schema is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from .access import declarations, flat_routes, is_api_route

__all__ = ["ErrorOut", "declare_error_responses"]


class ErrorOut(BaseModel):
    """An error answer."""

    detail: str | list[dict[str, Any]] | dict[str, Any] = Field(
        description="What was wrong: a message, the list of invalid request fields, or a"
        " structured refusal such as an enrollment's ``{reason, message}``."
    )


_TEXT = {
    400: "Malformed request (e.g. an invalid Content-Length).",
    401: "Credentials missing, unknown, revoked or expired.",
    403: "The staff key's role does not allow this route.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    410: "Expired (an enrollment code).",
    429: "Too many attempts; retry after the Retry-After delay.",
    502: "The MQTT broker refused or did not answer (device provisioning).",
    413: "Request body larger than the configured limit.",
    422: "Invalid request parameters or body.",
    503: "The database is unavailable; retry later.",
}


def _codes(route: Any) -> list[int]:
    kinds = {a.kind for a in declarations(route)}
    codes = [404, 422, 503]
    if kinds != {"public"} or route.path.startswith("/portal"):
        codes.append(401)  # the portal's sign-in page answers 401 for an unknown token
    if "staff" in kinds or not kinds:
        codes.append(403)
    if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
        codes += [400, 409, 413]
    if route.path == "/enroll" or route.path.startswith("/devices/"):
        codes += [410, 429, 502] if route.path == "/enroll" else [502]
    return sorted(codes)


def _with_errors(app: FastAPI, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = build()
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorOut"] = ErrorOut.model_json_schema()
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for route in flat_routes(app.routes):
        if not is_api_route(route) or not route.include_in_schema:
            continue
        html = route.path.startswith("/portal")
        for method in route.methods or ():
            op = schema["paths"].get(route.path_format, {}).get(method.lower())
            if op is None:
                continue
            for code in _codes(route):
                content: dict[str, Any] = dict(json_error)
                if html and code in (401, 404):
                    content["text/html"] = {"schema": {"type": "string"}}
                op["responses"][str(code)] = {"description": _TEXT[code], "content": content}
    app.openapi_schema = schema
    return schema


def declare_error_responses(app: FastAPI) -> None:
    """Make the app's OpenAPI document list the error answers each route may give (every
    error answer is an ``ErrorOut``; FastAPI's own 422 schema is replaced by it)."""
    build = app.openapi
    app.openapi = lambda: _with_errors(app, build)  # type: ignore[method-assign]
