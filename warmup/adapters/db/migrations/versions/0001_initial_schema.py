"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "lanes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("isp", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ramp_day", sa.Integer(), nullable=False),
        sa.Column("allowance_per_hour", sa.Float(), nullable=False),
        sa.Column("backoff_factor", sa.Float(), nullable=False),
        sa.Column("backoff_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recover_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("throttles", sa.Integer(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=True),
        sa.Column("day_attempted", sa.Integer(), nullable=False),
        sa.Column("day_delivered", sa.Integer(), nullable=False),
        sa.Column("day_soft", sa.Integer(), nullable=False),
        sa.Column("day_hard", sa.Integer(), nullable=False),
        sa.Column("day_throttle", sa.Integer(), nullable=False),
        sa.Column("day_block", sa.Integer(), nullable=False),
        sa.Column("day_complaints", sa.Integer(), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lanes")),
        sa.UniqueConstraint("ip", "isp", name=op.f("uq_lanes_ip_isp")),
    )
    op.create_table(
        "suppressions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("address", name=op.f("uq_suppressions_address")),
    )
    op.create_table(
        "templates",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("sha256", name=op.f("uq_templates_sha256")),
    )
    op.create_table(
        "campaigns",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "template_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_campaigns_template_id_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "lane_days",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "lane_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ramp_day", sa.Integer(), nullable=False),
        sa.Column("allowance_per_hour", sa.Float(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("soft", sa.Integer(), nullable=False),
        sa.Column("hard", sa.Integer(), nullable=False),
        sa.Column("throttle", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("max_per_minute", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lane_id"], ["lanes.id"], name=op.f("fk_lane_days_lane_id_lanes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lane_days")),
        sa.UniqueConstraint("lane_id", "day", name=op.f("uq_lane_days_lane_id_day")),
    )
    op.create_table(
        "lane_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "lane_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("old_state", sa.String(length=16), nullable=True),
        sa.Column("new_state", sa.String(length=16), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lane_id"], ["lanes.id"], name=op.f("fk_lane_events_lane_id_lanes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lane_events")),
    )
    with op.batch_alter_table("lane_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lane_events_lane_id"), ["lane_id"], unique=False
        )

    op.create_table(
        "recipients",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "campaign_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("isp", sa.String(length=64), nullable=True),
        sa.Column("engagement_score", sa.Float(), nullable=True),
        sa.Column("engaged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "lane_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_recipients_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["lane_id"], ["lanes.id"], name=op.f("fk_recipients_lane_id_lanes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipients")),
        sa.UniqueConstraint(
            "campaign_id", "address", name=op.f("uq_recipients_campaign_id_address")
        ),
    )
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recipients_address"), ["address"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_recipients_state_claimed_until"),
            ["state", "claimed_until"],
            unique=False,
        )
        batch_op.create_index(
            "ix_recipients_claim_order",
            ["state", "isp", sa.text("priority DESC"), "id"],
            unique=False,
        )

    op.create_table(
        "attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "recipient_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "lane_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("enhanced", sa.String(length=16), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("rule", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["lane_id"], ["lanes.id"], name=op.f("fk_attempts_lane_id_lanes")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_attempts_recipient_id_recipients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attempts_lane_id"), ["lane_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attempts_recipient_id"), ["recipient_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_attempts_lane_id"))

    op.drop_table("attempts")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_recipients_claim_order")
        batch_op.drop_index(batch_op.f("ix_recipients_state_claimed_until"))
        batch_op.drop_index(batch_op.f("ix_recipients_address"))

    op.drop_table("recipients")
    with op.batch_alter_table("lane_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lane_events_lane_id"))

    op.drop_table("lane_events")
    op.drop_table("lane_days")
    op.drop_table("campaigns")
    op.drop_table("templates")
    op.drop_table("suppressions")
    op.drop_table("lanes")
