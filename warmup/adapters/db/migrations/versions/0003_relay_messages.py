"""relay messages: submitted messages, recipients pointing at them

Relayed mail is a complete message per submission, not a template: ``messages``
holds it, ``recipients.message_id`` points at it, and a campaign made by the relay
has no template. An address stays unique per campaign for template mail only (a
partial unique index), since a relay campaign may send one address several
messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TEMPLATE_ONLY = sa.text("message_id IS NULL")


def _claim_order() -> None:
    # SQLite's table copy drops expression indexes it cannot reflect: recreate it.
    op.execute("DROP INDEX IF EXISTS ix_recipients_claim_order")
    op.create_index(
        "ix_recipients_claim_order",
        "recipients",
        ["state", "isp", sa.text("priority DESC"), "id"],
        unique=False,
    )


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("auth_user", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_messages_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_campaign_id"), ["campaign_id"], unique=False
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("template_id", existing_type=_ID, nullable=True)
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", _ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_recipients_message_id_messages"),
            "messages",
            ["message_id"],
            ["id"],
        )
        batch_op.drop_constraint(
            batch_op.f("uq_recipients_campaign_id_address"), type_="unique"
        )
        batch_op.create_index(
            "uq_recipients_campaign_id_address",
            ["campaign_id", "address"],
            unique=True,
            sqlite_where=_TEMPLATE_ONLY,
            postgresql_where=_TEMPLATE_ONLY,
        )
    _claim_order()


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index("uq_recipients_campaign_id_address")
        batch_op.drop_constraint(
            batch_op.f("fk_recipients_message_id_messages"), type_="foreignkey"
        )
        batch_op.drop_column("message_id")
        batch_op.create_unique_constraint(
            batch_op.f("uq_recipients_campaign_id_address"), ["campaign_id", "address"]
        )
    _claim_order()
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("template_id", existing_type=_ID, nullable=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_campaign_id"))
    op.drop_table("messages")
