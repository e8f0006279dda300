"""The console's materialised operator actions: SQLite by default, PostgreSQL when configured.

The topic ``shorewatch.alert.action.v1`` is the source of truth; this store is a queryable
copy of it (the audit view, the triage state at start-up) with, per partition, the offset
of the next record to read. A lost or new store is rebuilt by reading the topic from the
beginning; a store whose offsets lie beyond the topic's end (the topic was recreated) is
emptied and rebuilt the same way. Writing an action is idempotent (its ``action_id``).

Store URLs: ``sqlite:///var/console/actions.db`` (or a plain path) and
``postgresql://user:pass@host:port/db`` (psycopg 3).

Every wait has a deadline: connecting (:data:`CONNECT_TIMEOUT_S`), each statement and the
locks it waits for (:data:`STATEMENT_TIMEOUT_S`; ``busy_timeout`` in SQLite) and a server
that stops answering (TCP keep-alives). A failure rolls the transaction back and raises
:class:`~pipeline.errors.ActionStoreError`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from pipeline.errors import ActionStoreError, ConsoleError
from schemas.records import AlertAction

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS console_action (
        action_id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        action TEXT NOT NULL,
        t_ms BIGINT NOT NULL,
        username TEXT NOT NULL,
        body TEXT NOT NULL,
        part INTEGER NOT NULL,
        off BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS console_action_alert ON console_action (alert_id)",
    "CREATE INDEX IF NOT EXISTS console_action_user_t ON console_action (username, t_ms)",
    "CREATE INDEX IF NOT EXISTS console_action_order ON console_action (part, off)",
    """CREATE TABLE IF NOT EXISTS console_offset (
        part INTEGER PRIMARY KEY,
        next_offset BIGINT NOT NULL
    )""",
)

CONNECT_TIMEOUT_S = 15
"""How long opening a PostgreSQL store may take, s."""

STATEMENT_TIMEOUT_S = 30
"""How long one statement may run, waiting for locks included, s."""

_dec = msgspec.json.Decoder(AlertAction)
_enc = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One action as the audit view shows it."""

    action: AlertAction
    part: int
    offset: int


class ActionStore:
    """Actions and read offsets in an SQL database (thread-safe, blocking calls).

    :param url: ``sqlite:///path``, a file path, ``:memory:`` or ``postgresql://...``
    """

    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        if url.startswith(("postgresql+psycopg://", "postgresql+psycopg2://")):
            url = "postgresql://" + url.split("://", 1)[1]  # a SQLAlchemy URL is accepted too
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError as exc:  # pragma: no cover - psycopg is a dependency
                raise ConsoleError("a PostgreSQL store needs psycopg 3") from exc
            try:
                self._conn: Any = psycopg.connect(**_pg_params(url), autocommit=False)
            except psycopg.Error as exc:
                raise ActionStoreError(f"PostgreSQL store {_redact(url)}: {exc}") from exc
            self.kind = "postgresql"
            self._ph = "%s"
            self._errors: tuple[type[Exception], ...] = (psycopg.Error,)
        else:
            path = url[len("sqlite://") :] if url.startswith("sqlite://") else url
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, timeout=STATEMENT_TIMEOUT_S)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self.kind = "sqlite"
            self._ph = "?"
            self._errors = (sqlite3.Error,)
        with self._txn() as cur:
            for stmt in _SCHEMA:
                cur.execute(stmt)

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._ph)

    @contextlib.contextmanager
    def _txn(self) -> Iterator[Any]:
        """A cursor in one transaction, committed at the end; on a database error (a
        statement past its deadline included) rolled back and raised as ActionStoreError."""
        with self._lock:
            try:
                yield self._conn.cursor()
                self._conn.commit()
            except self._errors as exc:
                with contextlib.suppress(Exception):
                    self._conn.rollback()
                raise ActionStoreError(f"action store ({self.kind}): {exc}") from exc
            except BaseException:
                with contextlib.suppress(Exception):
                    self._conn.rollback()
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def offsets(self) -> dict[int, int]:
        """Per partition, the offset of the next record to read."""
        with self._txn() as cur:
            cur.execute("SELECT part, next_offset FROM console_offset")
            rows = cur.fetchall()
        return {int(p): int(o) for p, o in rows}

    def add(self, part: int, items: Iterable[tuple[int, AlertAction | None]]) -> int:
        """Store the actions read from one partition (``None``: a record that was
        dead-lettered; its offset still moves on) and the next offset, in one transaction.

        :returns: how many actions were new
        """
        items = list(items)
        if not items:
            return 0
        new = 0
        with self._txn() as cur:
            insert = self._q(
                "INSERT INTO console_action (action_id, alert_id, action, t_ms, username, body,"
                " part, off) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (action_id) DO NOTHING"
            )
            for off, a in items:
                if a is None:
                    continue
                cur.execute(
                    insert,
                    (
                        a.action_id,
                        a.alert_id,
                        a.action,
                        a.t_ms,
                        a.user,
                        _enc.encode(a).decode(),
                        part,
                        off,
                    ),
                )
                new += max(cur.rowcount, 0)
            nxt = max(off for off, _ in items) + 1
            cur.execute(
                self._q(
                    "INSERT INTO console_offset (part, next_offset) VALUES (?, ?) ON CONFLICT"
                    " (part) DO UPDATE SET next_offset = excluded.next_offset"
                ),
                (part, nxt),
            )
        return new

    def clear(self) -> None:
        """Forget everything (before a rebuild from the topic)."""
        with self._txn() as cur:
            cur.execute("DELETE FROM console_action")
            cur.execute("DELETE FROM console_offset")

    def all_actions(self) -> list[AlertAction]:
        """Every action in topic order per partition (what rebuilds the triage board)."""
        with self._txn() as cur:
            cur.execute("SELECT body FROM console_action ORDER BY t_ms, part, off")
            rows = cur.fetchall()
        return [_dec.decode(r[0]) for r in rows]

    def audit(
        self,
        *,
        user: str | None = None,
        alert_id: str | None = None,
        since_t_ms: int | None = None,
        until_t_ms: int | None = None,
        limit: int = 500,
    ) -> list[AuditRow]:
        """Actions, newest first, filtered by user, alert and time (ms UTC, ``until`` excluded)."""
        where, params = [], []
        for col, val, op in (
            ("username", user, "="),
            ("alert_id", alert_id, "="),
            ("t_ms", since_t_ms, ">="),
            ("t_ms", until_t_ms, "<"),
        ):
            if val is not None:
                where.append(f"{col} {op} ?")
                params.append(val)
        sql = "SELECT body, part, off FROM console_action"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t_ms DESC, part, off DESC LIMIT ?"
        params.append(int(limit))
        with self._txn() as cur:
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
        return [AuditRow(_dec.decode(b), int(p), int(o)) for b, p, o in rows]


def _pg_params(url: str) -> dict[str, Any]:
    """libpq parameters of ``url`` with the store's deadlines added (the URL's own
    ``options`` are kept; its own ``connect_timeout`` and keep-alives win)."""
    from psycopg.conninfo import conninfo_to_dict

    params: dict[str, Any] = dict(conninfo_to_dict(url))
    ms = STATEMENT_TIMEOUT_S * 1000
    own = params.get("options") or ""
    params["options"] = f"{own} -c statement_timeout={ms} -c lock_timeout={ms}".strip()
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    # a server that stops answering mid-statement: the socket gives up after about 20 s
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 5)
    params.setdefault("keepalives_interval", 5)
    params.setdefault("keepalives_count", 3)
    params.setdefault("tcp_user_timeout", 20_000)
    return params


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        cred, host = rest.split("@", 1)
        return f"{scheme}//{cred.split(':', 1)[0]}:***@{host}"
    return url
