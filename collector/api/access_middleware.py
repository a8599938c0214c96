"""The ASGI middleware in front of every route: staff authentication and role check *before*
the request body is read, the body size limit, and the audit entry of every state-changing
call (written before the response leaves, so a client that got an answer can find its entry).
"""

from __future__ import annotations

import json
import logging
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


async def _answer(send: Send, status: int, detail: str, *extra: tuple[bytes, bytes]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
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
        method: str = scope["method"]
        access = self.policy.access(scope)
        who: Principal | None = None
        audit = _Audit(self.policy, scope, access)
        send = audit.wrap(send)
        if access is not None and access.kind == "staff":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode("latin-1") or None
            try:
                who = await anyio.to_thread.run_sync(self.policy.gate.resolve, auth)
            except BadCredentials as exc:
                await _answer(send, 401, str(exc), _CHALLENGE)
                return
            except StorageError as exc:
                await _answer(send, 503, f"database unavailable: {exc}")
                return
            if who is None:
                await _answer(send, 401, "staff key required", _CHALLENGE)
                return
            audit.principal = who
            scope.setdefault("state", {})["principal"] = who
            required = access.role
            if required is None or not who.role.grants(required):
                need = required.value if required else "admin"
                await _answer(send, 403, f"this route needs the {need} role; "
                                         f"the key has {who.role.value}")
                return
        if method in CHANGING_METHODS or _has_body(scope):
            body = await self._read_body(scope, receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        try:
            await self.app(scope, receive, send)
        except Exception:
            if audit.pending():
                await anyio.to_thread.run_sync(audit.write, 500)
            raise

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or ``None`` after answering 413/400."""
        limit = self.policy.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _answer(send, 400, "invalid Content-Length")
                return None
            if declared > limit:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return None
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
