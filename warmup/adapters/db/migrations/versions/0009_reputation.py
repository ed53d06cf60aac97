"""reputation: the ISPs' own data (Google Postmaster Tools, Microsoft SNDS)

``reputation_days`` holds one row per source x domain x IP x day.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reputation_days",
        sa.Column("id", _ID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spam_rate", sa.Float(), nullable=True),
        sa.Column("domain_reputation", sa.String(length=16), nullable=True),
        sa.Column("ip_reputation", sa.Text(), nullable=True),
        sa.Column("spf_rate", sa.Float(), nullable=True),
        sa.Column("dkim_rate", sa.Float(), nullable=True),
        sa.Column("dmarc_rate", sa.Float(), nullable=True),
        sa.Column("filter_result", sa.String(length=16), nullable=True),
        sa.Column("complaint_rate", sa.Float(), nullable=True),
        sa.Column("trap_hits", sa.Integer(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_days")),
        sa.UniqueConstraint(
            "source",
            "domain",
            "ip",
            "day",
            name=op.f("uq_reputation_days_source_domain_ip_day"),
        ),
    )
    op.create_index(
        op.f("ix_reputation_days_day"), "reputation_days", ["day"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_reputation_days_day"), table_name="reputation_days")
    op.drop_table("reputation_days")
