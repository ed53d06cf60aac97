"""controls and events: operator pause/resume and campaign cancel, recipient
deadlines, the outbox of outcome events and its consumers' cursors

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HAS_DEADLINE = sa.text("deadline_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "controls",
        sa.Column("id", _ID, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("isp", sa.String(length=64), nullable=True),
        sa.Column("campaign", sa.String(length=255), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controls")),
    )
    op.add_column(
        "lanes",
        sa.Column(
            "operator_paused",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
        ),
    )
    op.add_column(
        "lanes",
        sa.Column(
            "control_seen", sa.BigInteger(), nullable=False, server_default=sa.text("0")
        ),
    )
    op.create_table(
        "events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipient_id", _ID, nullable=True),
        sa.Column("campaign", sa.String(length=255), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("isp", sa.String(length=64), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"], unique=False)
    op.create_table(
        "event_cursors",
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_cursors")),
    )
    op.add_column("messages", sa.Column("client_message_id", sa.Text(), nullable=True))
    op.add_column(
        "campaigns",
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "recipients",
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        op.f("ix_recipients_message_id"), "recipients", ["message_id"], unique=False
    )
    op.create_index(
        "ix_recipients_deadline_at",
        "recipients",
        ["deadline_at"],
        unique=False,
        sqlite_where=_HAS_DEADLINE,
        postgresql_where=_HAS_DEADLINE,
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_deadline_at", table_name="recipients")
    op.drop_index(op.f("ix_recipients_message_id"), table_name="recipients")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_column("deadline_at")
    # SQLite's table copy drops expression indexes it cannot reflect: recreate it.
    op.execute("DROP INDEX IF EXISTS ix_recipients_claim_order")
    op.create_index(
        "ix_recipients_claim_order",
        "recipients",
        ["state", "isp", sa.text("priority DESC"), "id"],
        unique=False,
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("cancelled_at")
    with op.batch_alter_table("lanes", schema=None) as batch_op:
        batch_op.drop_column("control_seen")
        batch_op.drop_column("operator_paused")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("client_message_id")
    op.drop_table("event_cursors")
    op.drop_index(op.f("ix_events_at"), table_name="events")
    op.drop_table("events")
    op.drop_table("controls")
