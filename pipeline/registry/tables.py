"""The registry's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Migrations (``pipeline/registry/migrations``) create and change them; this module is what
the code reads and writes through.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "vessels", "watchlist"]

metadata = sa.MetaData()

#: one row per registered vessel; ``registration_no`` is the natural key of an import
vessels = sa.Table(
    "vessels",
    metadata,
    sa.Column("registration_no", sa.String(64), primary_key=True),
    sa.Column("mmsi", sa.BigInteger, nullable=True, index=True),
    sa.Column("name", sa.String(128), nullable=True),
    sa.Column("hull_number", sa.String(32), nullable=True, index=True),
    sa.Column("port_of_registry", sa.String(64), nullable=True),
    sa.Column("vessel_type", sa.String(32), nullable=True),
    sa.Column("length_m", sa.Float, nullable=True),
    sa.Column("owner", sa.String(128), nullable=True),
    # authorised home harbours: names of the site's zones, "|"-separated
    sa.Column("home_harbours", sa.String(512), nullable=True),
    sa.Column("valid_until", sa.Date, nullable=True),
)

#: vessels to look out for: by MMSI, name or hull number, with why and until when
watchlist = sa.Table(
    "watchlist",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # mmsi | name | hull_number
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(512), nullable=False),
    sa.Column("added_by", sa.String(64), nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("kind", "value", name="uq_watchlist_kind_value"),
)
