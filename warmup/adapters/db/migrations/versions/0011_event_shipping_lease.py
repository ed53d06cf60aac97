"""event shipping lease: one shipper per consumer across nodes

``event_cursors.holder`` names the process shipping that consumer's events and
``held_until`` when its lease lapses (another node then takes it over).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_cursors") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=255), nullable=True))
        batch.add_column(
            sa.Column("held_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("event_cursors") as batch:
        batch.drop_column("held_until")
        batch.drop_column("holder")
