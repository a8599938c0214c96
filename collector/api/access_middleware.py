"""The ASGI middleware in front of every route: staff authentication and role check *before*
the request body is read, the body size limit, and the audit entry of every state-changing
call (written before the response leaves, so a client that got an answer can find its entry).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.access import AuditEntry, Principal, Role
from collector.errors import StorageError
from collector.storage import access_store
from collector.storage.database import translate_errors

from .access import Access, flat_routes, route_access
from .access_gate import BadCredentials, StaffGate

__all__ = ["CHANGING_METHODS", "AccessMiddleware", "AccessPolicy"]

log = logging.getLogger(__name__)
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHALLENGE = (b"www-authenticate", b'Bearer realm="tally"')
# A JSON string can carry NUL only as the escape \u0000 (an odd run of backslashes before it).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
ADMIN_ONLY = Access("staff", Role.ADMIN)


@dataclass(slots=True)
class AccessPolicy:
    """What the middleware needs: the gate, the body limit, the public documentation paths."""

    gate: StaffGate
    max_body_bytes: int = 1 << 20
    public_paths: frozenset[str] = frozenset()
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _by_route: dict[int, Access] = field(default_factory=dict)
    _routes: list[Any] | None = None
    _version: int = -1

    def access(self, scope: Scope) -> Access | None:
        """The declared access of the route ``scope`` goes to; ``None`` for no route (404/405).
        A route without exactly one declaration is treated as admin-only."""
        app = scope["app"]
        if self._routes is None or self._version != len(app.router.routes):
            self._routes = flat_routes(app.router.routes)
            self._version = len(app.router.routes)
            self._by_route.clear()
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                key = id(route)
                if key not in self._by_route:
                    self._by_route[key] = route_access(route, self.public_paths) or ADMIN_ONLY
                return self._by_route[key]
        return None


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    detail: str
    header: tuple[bytes, bytes] | None = None


async def _answer(send: Send, refusal: _Refusal) -> None:
    body = json.dumps({"detail": refusal.detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if refusal.header is not None:
        headers.append(refusal.header)
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AccessMiddleware:
    """See the module docstring; installed by ``create_app``."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = self.policy.access(scope)
        audit = _Audit(self.policy, scope, access)
        send = audit.wrap(send)
        refusal = await self._staff_refusal(scope, access, audit)
        query: bytes = scope.get("query_string", b"")
        if refusal is None and ("\x00" in scope["path"] or b"%00" in query or b"\x00" in query):
            refusal = _Refusal(422, "NUL bytes are not allowed in the URL")
        if refusal is None and (scope["method"] in CHANGING_METHODS or _has_body(scope)):
            body = await self._read_body(scope, receive)
            if isinstance(body, _Refusal):
                refusal = body
            elif _NUL_ESCAPE.search(body):
                refusal = _Refusal(422, "NUL characters (\\u0000) are not allowed in the body")
            else:
                receive = _replay(body, receive)
        if refusal is not None:
            await _answer(send, refusal)
            return
        try:
            await self.app(scope, receive, send)
        except Exception:
            if audit.pending():
                await anyio.to_thread.run_sync(audit.write, 500)
            raise

    async def _staff_refusal(
        self, scope: Scope, access: Access | None, audit: _Audit
    ) -> _Refusal | None:
        """Authenticate and check the role of a staff route (``None``: go on)."""
        if access is None or access.kind != "staff":
            return None
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1") or None
        try:
            who = await anyio.to_thread.run_sync(self.policy.gate.resolve, auth)
        except BadCredentials as exc:
            return _Refusal(401, str(exc), _CHALLENGE)
        except StorageError as exc:
            return _Refusal(503, f"database unavailable: {exc}")
        if who is None:
            return _Refusal(401, "staff key required", _CHALLENGE)
        audit.principal = who
        scope.setdefault("state", {})["principal"] = who
        need = access.role or Role.ADMIN
        if not who.role.grants(need):
            return _Refusal(403, f"this route needs the {need.value} role; "
                                 f"the key has {who.role.value}")
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | _Refusal:
        """The whole body, or why it is refused (400/413)."""
        limit = self.policy.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return _Refusal(400, "invalid Content-Length")
            if declared > limit:
                return _Refusal(413, f"request body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return _Refusal(413, f"request body larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return b"content-length" in headers or b"transfer-encoding" in headers


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


@dataclass(slots=True)
class _Audit:
    """Writes the audit entry of a state-changing call when its response starts."""

    policy: AccessPolicy
    scope: Scope
    access: Access | None
    principal: Principal | None = None
    done: bool = False

    def pending(self) -> bool:
        return self.scope["method"] in CHANGING_METHODS and not self.done

    def wrap(self, send: Send) -> Send:
        if self.scope["method"] not in CHANGING_METHODS:
            return send

        async def audited(message: Message) -> None:
            if message["type"] == "http.response.start" and not self.done:
                self.done = True
                await anyio.to_thread.run_sync(self.write, int(message["status"]))
            await send(message)

        return audited

    def _actor(self) -> tuple[str, str | None]:
        if self.principal is not None:
            return self.principal.actor, self.principal.role.value
        if self.access is not None and self.access.kind == "customer":
            return "customer", None
        return "anonymous", None

    def write(self, status: int) -> None:
        self.done = True
        actor, role = self._actor()
        state: dict[str, Any] = self.scope.get("state", {})
        client = self.scope.get("client")
        query = self.scope.get("query_string", b"").decode("latin-1")
        path = self.scope["path"] + (f"?{query}" if query else "")
        entry = AuditEntry(
            at=self.policy.clock(), actor=actor, role=role, method=self.scope["method"],
            path=path[:2000], status=status, client=client[0] if client else None,
            target=state.get("audit_target"),
        )
        try:
            with translate_errors("write audit log"), self.policy.gate.pool.connection() as conn:
                access_store.record_audit(conn, entry)
        except StorageError as exc:
            log.warning("audit entry not written (%s %s by %s): %s",
                      entry.method, entry.path, entry.actor, exc)
