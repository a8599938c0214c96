"""A throwaway TimescaleDB for the tests of the TimescaleDB schema flavour.

``TALLY_TIMESCALE_URL`` names a native TimescaleDB server (the extension installed and in
``shared_preload_libraries``; any database of it, as for ``DATABASE_URL``): each test then gets a
fresh database of its own there, dropped afterwards, and no sandbox is started
(docs/operations.md, "TimescaleDB built from source").

Without it (the machine's PostgreSQL has no TimescaleDB) these tests run against the shared
``timescale-sandbox`` tool: TimescaleDB 2.23 on PostgreSQL 17 compiled to WebAssembly (npm
package, cached under ``$XDG_CACHE_HOME`` or ``~/.cache``). The tool is found through
``TALLY_TIMESCALE_SANDBOX`` or at ``<repo>/../shared/tools/timescale-sandbox``.

Sandbox limits the tests must respect: ONE in-memory database, ONE connection at a time (a
second connection waits until the first closes, hence ``connect_timeout`` in the URL). Measured
with 2.23 / pglite 0.3.14: ``COPY … FROM STDIN`` and any protocol message over 64 KiB (a big
statement or parameter set) crash the server; ``COPY … TO STDOUT`` works; the tool documents no
pipeline mode (``executemany``). Every connection talks to the
SAME backend session, so server-side state outlives a connection: prepared statements, for one,
would collide (psycopg names them ``_pg3_0``, ``_pg3_1``… per connection), hence
:func:`without_prepared_statements` for the duration of a test.

Between tests :func:`reset_database` drops every object that is not part of the extension,
then checks that nothing is left, so each test starts from an empty database without paying
for a restart (about 5 s). A test that kills the sandbox fails; the next test restarts it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "NO_TIMESCALE_ENV",
    "SANDBOX_ENV",
    "TIMESCALE_URL_ENV",
    "SandboxError",
    "TimescaleSandbox",
    "find_sandbox",
    "reset_database",
    "timescale_db",
    "timescale_sandbox",
    "timescale_url",
    "without_prepared_statements",
]

SANDBOX_ENV: Final = "TALLY_TIMESCALE_SANDBOX"
NO_TIMESCALE_ENV: Final = "TALLY_NO_TIMESCALE"
TIMESCALE_URL_ENV: Final = "TALLY_TIMESCALE_URL"
START_TIMEOUT_ENV: Final = "TALLY_TIMESCALE_START_TIMEOUT"
_REPO: Final = Path(__file__).resolve().parents[2]
_URL_RE: Final = re.compile(r"postgresql://\S+")
_CONNECT_TIMEOUT_S: Final = 15
_DEFAULT_START_TIMEOUT_S: Final = 240.0  # first start runs `npm install`; < pytest timeout


class SandboxError(RuntimeError):
    """The TimescaleDB sandbox could not be found, started or reset."""


def find_sandbox(repo: Path = _REPO) -> Path:
    """Path of the ``timescale-sandbox`` script (``TALLY_TIMESCALE_SANDBOX`` wins)."""
    configured = os.environ.get(SANDBOX_ENV)
    path = Path(configured) if configured else repo.parent / "shared/tools/timescale-sandbox"
    if not path.is_file():
        how = f"${SANDBOX_ENV}" if configured else f"<repo>/../shared (set ${SANDBOX_ENV})"
        raise SandboxError(
            f"TimescaleDB sandbox not found at {path} (from {how}); the TimescaleDB tests need it"
            f" and node/npm, or set {NO_TIMESCALE_ENV}=1 to deselect them"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TimescaleSandbox:
    """One sandbox process (its own process group), started and stopped explicitly."""

    def __init__(self, script: Path, log_dir: Path) -> None:
        self._script = script
        self._log_dir = log_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self.url = ""
        self.started_in_s = 0.0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float | None = None) -> str:
        """Start on a free port; return its URL once it prints it. Retries once (another
        sandbox starting at the same moment may share the tool's ``serve.mjs``)."""
        limit = timeout_s or float(os.environ.get(START_TIMEOUT_ENV, _DEFAULT_START_TIMEOUT_S))
        failure = SandboxError("not started")
        for _ in range(2):
            try:
                return self._start_once(limit)
            except SandboxError as exc:
                failure = exc
                self.stop()
        raise failure

    def _start_once(self, timeout_s: float) -> str:
        began = time.monotonic()
        port = _free_port()
        self._log = self._log_dir / f"timescale-sandbox-{port}.log"
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                ["bash", str(self._script), str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - began < timeout_s:
            text = self._log.read_text(errors="replace")
            found = _URL_RE.search(text)
            if found:
                self.url = f"{found[0]}&connect_timeout={_CONNECT_TIMEOUT_S}"
                self._wait_ready(began + timeout_s)
                self.started_in_s = time.monotonic() - began
                return self.url
            if self._proc.poll() is not None:
                raise SandboxError(
                    f"TimescaleDB sandbox {self._script} exited with {self._proc.returncode}"
                    f" before printing its URL:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        raise SandboxError(
            f"TimescaleDB sandbox did not print its URL within {timeout_s:.0f} s"
            f" (${START_TIMEOUT_ENV}):\n{self.log_tail()}"
        )

    def _wait_ready(self, deadline: float) -> None:
        while True:
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline or not self.running:
                    raise SandboxError(
                        f"TimescaleDB sandbox printed {self.url} but does not answer: {exc}\n"
                        f"{self.log_tail()}"
                    ) from exc
                time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the sandbox printed (npm and node errors end up here)."""
        if self._log is None or not self._log.exists():
            return "(no output)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the whole process group (bash, npm, node)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        else:  # the leader is gone; children (npm) may not be
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def without_prepared_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every psycopg connection opened from now on (``psycopg.connect``, pools) use
    unnamed statements only, until ``monkeypatch`` is undone."""
    real = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: type[psycopg.Connection[Any]], *args: Any, **kwargs: Any
                ) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = real(cls, *args, **kwargs)
        conn.prepare_threshold = None
        return conn

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(connect))
    monkeypatch.setattr(psycopg, "connect", psycopg.Connection.connect)


def reset_database(url: str) -> None:
    """Drop every object of ``public`` that the extension does not own, then check that no
    table, routine, hypertable, continuous aggregate or user job is left."""
    not_extension = (
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.prepare_threshold = None
        conn.execute("DEALLOCATE ALL")
        for schema, view in conn.execute(
            "SELECT view_schema, view_name FROM timescaledb_information.continuous_aggregates"
        ).fetchall():
            conn.execute(
                sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema, view)
                )
            )
        for kind, keyword in (("v", "VIEW"), ("m", "MATERIALIZED VIEW"), ("r", "TABLE"),
                              ("p", "TABLE"), ("S", "SEQUENCE")):
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
                " AND c.relkind = %s AND " + not_extension.format(oid="c.oid"),
                (kind,),
            ).fetchall()
            for (name,) in rows:
                conn.execute(
                    sql.SQL("DROP {} IF EXISTS {} CASCADE").format(
                        sql.SQL(keyword), sql.Identifier("public", name)
                    )
                )
        for (routine,) in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND "
            + not_extension.format(oid="p.oid")
        ).fetchall():
            conn.execute(sql.SQL("DROP ROUTINE IF EXISTS {} CASCADE").format(sql.SQL(routine)))
        for (job,) in conn.execute(
            "SELECT id FROM _timescaledb_config.bgw_job WHERE id >= 1000"
        ).fetchall():
            conn.execute("SELECT delete_job(%s)", (job,))
        left = conn.execute(
            "SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            "   AND " + not_extension.format(oid="c.oid") + "),"
            " (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
            "   AND " + not_extension.format(oid="p.oid") + "),"
            " (SELECT count(*) FROM _timescaledb_catalog.hypertable),"
            " (SELECT count(*) FROM _timescaledb_catalog.continuous_agg),"
            " (SELECT count(*) FROM _timescaledb_config.bgw_job WHERE id >= 1000)"
        ).fetchone()
    if left != (0, 0, 0, 0, 0):
        raise SandboxError(
            "TimescaleDB sandbox not empty after reset (relations, routines, hypertables,"
            f" continuous aggregates, jobs): {left}"
        )


@pytest.fixture(scope="session")
def timescale_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimescaleSandbox]:
    """The session's TimescaleDB sandbox process (restartable after a crash).

    On a developer's machine without node or without ``shared/`` beside the checkout the
    tests are skipped with the reason; in CI (``TALLY_FAIL_ON_SKIP=1``) that is a failure.
    """
    problem = ""
    missing = "" if shutil.which("node") else "node is not installed"
    if not missing:
        try:
            find_sandbox()
        except SandboxError as exc:
            missing = str(exc)
    if missing and os.environ.get("TALLY_FAIL_ON_SKIP") != "1":
        pytest.skip(f"TimescaleDB sandbox unavailable here: {missing}")
    try:
        sandbox = TimescaleSandbox(find_sandbox(), tmp_path_factory.mktemp("timescale"))
        sandbox.start()
    except SandboxError as exc:
        problem = str(exc)
    if problem:  # failed outside the except block: no chained traceback in the report
        pytest.fail(problem, pytrace=False)
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="session")
def timescale_url(timescale_sandbox: TimescaleSandbox) -> str:
    """URL of the session's TimescaleDB sandbox (ONE connection at a time, no COPY)."""
    return timescale_sandbox.url


def _native_database(server_url: str) -> Iterator[str]:
    """A fresh database on the native TimescaleDB server ``server_url``, dropped afterwards."""
    name = f"tally_ts_{uuid.uuid4().hex[:12]}"
    problem = ""
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        problem = f"TimescaleDB server of ${TIMESCALE_URL_ENV} unusable: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def timescale_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of an empty database (no Tally schema yet) for this test: a fresh database on the
    native server of ``TALLY_TIMESCALE_URL`` when set, else the sandbox's one database, reset,
    with no named prepared statements for the test's psycopg connections (module docstring)."""
    native = os.environ.get(TIMESCALE_URL_ENV)
    if native:
        yield from _native_database(native)
        return
    timescale_sandbox = request.getfixturevalue("timescale_sandbox")
    assert isinstance(timescale_sandbox, TimescaleSandbox)
    without_prepared_statements(monkeypatch)
    problem = ""
    try:
        if not timescale_sandbox.running:
            timescale_sandbox.stop()
            timescale_sandbox.start()
        reset_database(timescale_sandbox.url)
    except (SandboxError, psycopg.Error) as exc:
        problem = f"TimescaleDB sandbox unusable: {exc}\n{timescale_sandbox.log_tail()}"
    if problem:
        pytest.fail(problem, pytrace=False)
    yield timescale_sandbox.url
    if not timescale_sandbox.running:
        pytest.fail(
            "the TimescaleDB sandbox died during this test (COPY FROM? a message over 64 KiB?):\n"
            + timescale_sandbox.log_tail(),
            pytrace=False,
        )
