"""forwarded reports: ``messages.dsn_for`` (relay.forward_bounces)

A delivery report warmup made for a relayed message's client names the
recipient it reports on; the unique index keeps it to one per recipient.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("messages", sa.Column("dsn_for", _ID, nullable=True))
    op.create_index("uq_messages_dsn_for", "messages", ["dsn_for"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_messages_dsn_for", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("dsn_for")
