"""The vessel registry and the watchlist.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vessels",
        sa.Column("registration_no", sa.String(64), primary_key=True),
        sa.Column("mmsi", sa.BigInteger, nullable=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("hull_number", sa.String(32), nullable=True),
        sa.Column("port_of_registry", sa.String(64), nullable=True),
        sa.Column("vessel_type", sa.String(32), nullable=True),
        sa.Column("length_m", sa.Float, nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("home_harbours", sa.String(512), nullable=True),
        sa.Column("valid_until", sa.Date, nullable=True),
    )
    op.create_index("ix_vessels_mmsi", "vessels", ["mmsi"])
    op.create_index("ix_vessels_hull_number", "vessels", ["hull_number"])
    op.create_table(
        "watchlist",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("kind", "value", name="uq_watchlist_kind_value"),
    )


def downgrade() -> None:
    op.drop_table("watchlist")
    op.drop_index("ix_vessels_hull_number", "vessels")
    op.drop_index("ix_vessels_mmsi", "vessels")
    op.drop_table("vessels")
