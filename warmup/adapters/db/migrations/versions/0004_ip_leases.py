"""ip leases: one owner per source IP, and a heartbeat per running process

``nodes`` holds one row per `warmup run` process, renewed every few seconds;
``ip_leases`` names the process that owns each source IP. A process whose
heartbeat lapsed is dead: its claims and IPs go to the next node at once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("claimer", sa.String(length=128), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("machine", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("claimer", name=op.f("pk_nodes")),
    )
    op.create_index(
        op.f("ix_nodes_alive_until"), "nodes", ["alive_until"], unique=False
    )
    op.create_table(
        "ip_leases",
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("claimer", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ip", name=op.f("pk_ip_leases")),
    )


def downgrade() -> None:
    op.drop_table("ip_leases")
    op.drop_index(op.f("ix_nodes_alive_until"), table_name="nodes")
    op.drop_table("nodes")
