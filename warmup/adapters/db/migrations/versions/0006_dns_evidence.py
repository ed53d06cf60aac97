"""dns evidence: dead-domain answers kept until they are confirmed over time

NXDOMAIN or a Null MX declares a domain dead only when lookups spanning
``dns.confirm_after`` agree; ``dns_evidence`` keeps the first and last such answer
per domain so every node, and a restarted one, sees the same evidence.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dns_evidence",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("error", sa.String(length=16), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lookups", sa.Integer(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_dns_evidence")),
    )


def downgrade() -> None:
    op.drop_table("dns_evidence")
