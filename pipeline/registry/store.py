"""The registry database: vessels and the watchlist, on SQLite or PostgreSQL.

:class:`Registry` opens the database named by a SQLAlchemy URL (``sqlite:///var/registry.sqlite``
by default, ``postgresql+psycopg://user@host/db`` for a server), brings its schema up to date
with the migrations, and answers the pipeline's questions in one query each: the records of a
micro-batch of MMSIs, a hull number, the watchlist entries that match a batch of vessels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from pipeline.core.hullnumbers import parse as parse_hull
from pipeline.errors import RegistryError, RegistryUnavailable
from pipeline.registry.tables import vessels, watchlist

__all__ = ["DEFAULT_URL", "WATCH_KINDS", "Registry", "VesselRecord", "WatchEntry"]

#: the embedded default, relative to the working folder
DEFAULT_URL = "sqlite:///var/registry.sqlite"
#: what a watchlist entry matches on
WATCH_KINDS = ("mmsi", "name", "hull_number")
_MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True, slots=True)
class VesselRecord:
    """One registered vessel. ``home_harbours``: names of authorised zones of the site."""

    registration_no: str
    mmsi: int | None
    name: str | None
    hull_number: str | None
    port_of_registry: str | None
    vessel_type: str | None
    length_m: float | None
    owner: str | None
    home_harbours: tuple[str, ...]
    valid_until: dt.date | None

    def expired(self, on: dt.date) -> bool:
        """Whether the registration has lapsed on day ``on``."""
        return self.valid_until is not None and self.valid_until < on

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, harbours as a list."""
        return {
            "registration_no": self.registration_no,
            "mmsi": self.mmsi,
            "name": self.name,
            "hull_number": self.hull_number,
            "port_of_registry": self.port_of_registry,
            "vessel_type": self.vessel_type,
            "length_m": self.length_m,
            "owner": self.owner,
            "home_harbours": list(self.home_harbours),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """A watchlist entry: ``kind`` is one of :data:`WATCH_KINDS`; times are UTC."""

    kind: str
    value: str
    reason: str
    added_by: str
    added_at: dt.datetime
    until: dt.datetime | None

    def active(self, at: dt.datetime) -> bool:
        return self.until is None or self.until > at


def _record(row: Any) -> VesselRecord:
    harbours = tuple(h for h in (row.home_harbours or "").split("|") if h)
    return VesselRecord(
        registration_no=row.registration_no,
        mmsi=row.mmsi,
        name=row.name,
        hull_number=row.hull_number,
        port_of_registry=row.port_of_registry,
        vessel_type=row.vessel_type,
        length_m=row.length_m,
        owner=row.owner,
        home_harbours=harbours,
        valid_until=row.valid_until,
    )


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes: they were written as UTC."""
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=dt.UTC)
    return t


def _entry(row: Any) -> WatchEntry:
    added = _utc(row.added_at)
    assert added is not None  # NOT NULL column
    return WatchEntry(row.kind, row.value, row.reason, row.added_by, added, _utc(row.until))


class Registry:
    """The registry database behind a SQLAlchemy URL.

    :param url: e.g. ``sqlite:///var/registry.sqlite`` or ``postgresql+psycopg://…``
    :raises RegistryUnavailable: the database cannot be reached
    """

    def __init__(self, url: str = DEFAULT_URL):
        self.url = url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise RegistryError(f"registry_url {url!r}: {exc}") from exc

    @classmethod
    def open(cls, url: str = DEFAULT_URL) -> Registry:
        """The registry at ``url`` with its schema migrated to the newest version."""
        reg = cls(url)
        reg.migrate()
        return reg

    def migrate(self) -> None:
        """Apply every migration not applied yet (Alembic, the same ones for every database).

        :raises RegistryUnavailable: the database cannot be reached
        """
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry database unreachable: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- vessels
    def upsert(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert or update vessels by ``registration_no``, all in one transaction.

        :param rows: column values (see :mod:`pipeline.registry.tables`), already validated
        :returns: the number of rows written
        """
        if not rows:
            return 0
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        else:  # pragma: no cover - the two supported databases
            raise RegistryError(f"unsupported registry database {dialect!r}")
        stmt = insert(vessels)
        cols = {c.name: stmt.excluded[c.name] for c in vessels.columns if not c.primary_key}
        stmt = stmt.on_conflict_do_update(index_elements=["registration_no"], set_=cols)
        with self._begin() as conn:
            conn.execute(stmt, [dict(r) for r in rows])
        return len(rows)

    def by_mmsi(self, mmsis: Iterable[int]) -> dict[int, VesselRecord]:
        """The registered vessels of a batch of MMSIs, in one query.

        :returns: MMSI → record, for the MMSIs that are registered
        """
        wanted = sorted({int(m) for m in mmsis})
        if not wanted:
            return {}
        q = sa.select(vessels).where(vessels.c.mmsi.in_(sa.bindparam("m", expanding=True)))
        with self._connect() as conn:
            rows = conn.execute(q, {"m": wanted}).all()
        return {r.mmsi: _record(r) for r in rows}

    def by_hull_number(self, text: str) -> VesselRecord | None:
        """The vessel with this hull number (normalised first), or ``None``."""
        hull = parse_hull(text)
        if hull is None:
            return None
        with self._connect() as conn:
            row = conn.execute(sa.select(vessels).where(vessels.c.hull_number == str(hull))).first()
        return _record(row) if row is not None else None

    def search(self, query: str, limit: int = 20) -> list[VesselRecord]:
        """Vessels whose MMSI, registration number or hull number is ``query``, or whose
        name contains it (case-insensitive)."""
        q = query.strip()
        conds = [vessels.c.registration_no == q, sa.func.lower(vessels.c.name).contains(q.lower())]
        if q.isdigit():
            conds.append(vessels.c.mmsi == int(q))
        hull = parse_hull(q)
        if hull is not None:
            conds.append(vessels.c.hull_number == str(hull))
        stmt = sa.select(vessels).where(sa.or_(*conds)).order_by(vessels.c.registration_no)
        with self._connect() as conn:
            return [_record(r) for r in conn.execute(stmt.limit(limit)).all()]

    def all(self) -> list[VesselRecord]:
        """Every registered vessel, in one query."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(vessels).order_by(vessels.c.registration_no)).all()
        return [_record(r) for r in rows]

    def hull_ports(self) -> set[str]:
        """The port abbreviations of every registered hull number (``海口`` of ``琼海口渔12345``):
        the lexicon the hull-number reader adds to its own list of ports."""
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(vessels.c.hull_number).where(vessels.c.hull_number.is_not(None))
            ).all()
        return {h.port for (text,) in rows if (h := parse_hull(text)) is not None}

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(vessels)).scalar_one())

    # ---------------------------------------------------------------- watchlist
    def watch(
        self, kind: str, value: str, reason: str, added_by: str,
        until: dt.datetime | None = None, now: dt.datetime | None = None,
    ) -> WatchEntry:  # fmt: skip
        """Add (or replace) a watchlist entry.

        :raises RegistryError: unknown ``kind``, empty value or reason
        """
        if kind not in WATCH_KINDS:
            raise RegistryError(f"watchlist kind {kind!r}: one of {', '.join(WATCH_KINDS)}")
        value = self._watch_value(kind, value)
        if not reason.strip() or not added_by.strip():
            raise RegistryError("a watchlist entry needs a reason and who adds it")
        now = now or dt.datetime.now(dt.UTC)
        entry = WatchEntry(kind, value, reason.strip(), added_by.strip(), now, until)
        with self._begin() as conn:
            conn.execute(
                sa.delete(watchlist).where(
                    (watchlist.c.kind == kind) & (watchlist.c.value == value)
                )
            )
            conn.execute(
                sa.insert(watchlist).values(
                    kind=kind, value=value, reason=entry.reason, added_by=entry.added_by,
                    added_at=now, until=until,
                )
            )  # fmt: skip
        return entry

    def unwatch(self, kind: str, value: str) -> bool:
        """Remove a watchlist entry; whether there was one."""
        value = self._watch_value(kind, value)
        with self._begin() as conn:
            res = conn.execute(
                sa.delete(watchlist).where(
                    (watchlist.c.kind == kind) & (watchlist.c.value == value)
                )
            )
        return bool(res.rowcount)

    def watchlist(self, at: dt.datetime | None = None) -> list[WatchEntry]:
        """Every entry, or with ``at`` the ones still active then."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(watchlist).order_by(watchlist.c.id)).all()
        out = [_entry(r) for r in rows]
        return [e for e in out if at is None or e.active(at)]

    def watch_hits(
        self,
        at: dt.datetime,
        mmsis: Iterable[int] = (),
        names: Iterable[str] = (),
        hull_numbers: Iterable[str] = (),
    ) -> list[WatchEntry]:
        """The active entries matching any of a batch of MMSIs, names or hull numbers, in
        one query."""
        keys = (
            [("mmsi", str(int(m))) for m in mmsis]
            + [("name", self._watch_value("name", n)) for n in names if n]
            + [("hull_number", self._watch_value("hull_number", h)) for h in hull_numbers if h]
        )
        if not keys:
            return []
        values = sorted({v for _, v in keys})
        q = sa.select(watchlist).where(watchlist.c.value.in_(sa.bindparam("v", expanding=True)))
        with self._connect() as conn:
            rows = conn.execute(q, {"v": values}).all()
        wanted = set(keys)
        hits = [_entry(r) for r in rows if (r.kind, r.value) in wanted]
        return [e for e in hits if e.active(at)]

    @staticmethod
    def _watch_value(kind: str, value: str) -> str:
        v = value.strip()
        if not v:
            raise RegistryError("an empty watchlist value")
        if kind == "mmsi":
            if not v.isdigit() or len(v) != 9:
                raise RegistryError(f"watchlist MMSI {value!r}: nine digits")
            return v
        if kind == "hull_number":
            hull = parse_hull(v)
            if hull is None:
                raise RegistryError(f"watchlist hull number {value!r} is not a valid hull number")
            return str(hull)
        return " ".join(v.upper().split())  # names as AIS writes them

    # ---------------------------------------------------------------- connections
    def _connect(self) -> Any:
        return _Guard(self.engine.connect)

    def _begin(self) -> Any:
        return _Guard(self.engine.begin)


class _Guard:
    """A connection context that turns "cannot connect" into :class:`RegistryUnavailable`."""

    def __init__(self, opener: Any):
        self._opener = opener
        self._cm: Any = None

    def __enter__(self) -> Any:
        try:
            self._cm = self._opener()
            return self._cm.__enter__()
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry database unreachable: {exc.orig}") from exc

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc)
