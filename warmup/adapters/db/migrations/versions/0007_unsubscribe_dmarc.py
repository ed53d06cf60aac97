"""unsubscribe and DMARC: per-campaign unsubscribes, DMARC aggregate report rows

``campaign_suppressions`` holds one-click unsubscribes scoped to one campaign
(``unsubscribe.scope: campaign``); ``dmarc_rows`` holds what DMARC aggregate
reports say per source IP x day x header-From domain.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COUNTS = (
    "messages",
    "spf_pass",
    "spf_aligned",
    "dkim_pass",
    "dkim_aligned",
    "dmarc_pass",
    "quarantined",
    "rejected",
)


def upgrade() -> None:
    op.create_table(
        "campaign_suppressions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_suppressions_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_suppressions")),
        sa.UniqueConstraint(
            "campaign_id",
            "address",
            name=op.f("uq_campaign_suppressions_campaign_id_address"),
        ),
    )
    op.create_index(
        op.f("ix_campaign_suppressions_address"),
        "campaign_suppressions",
        ["address"],
        unique=False,
    )
    op.create_table(
        "dmarc_rows",
        sa.Column("id", _ID, nullable=False),
        sa.Column("report_key", sa.String(length=64), nullable=False),
        sa.Column("org", sa.String(length=255), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("header_from", sa.String(length=255), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmarc_rows")),
        sa.UniqueConstraint(
            "report_key",
            "source_ip",
            "day",
            "header_from",
            name=op.f("uq_dmarc_rows_report_key_source_ip_day_header_from"),
        ),
    )
    op.create_index(
        op.f("ix_dmarc_rows_source_ip_day"),
        "dmarc_rows",
        ["source_ip", "day"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dmarc_rows_source_ip_day"), table_name="dmarc_rows")
    op.drop_table("dmarc_rows")
    op.drop_index(
        op.f("ix_campaign_suppressions_address"), table_name="campaign_suppressions"
    )
    op.drop_table("campaign_suppressions")
