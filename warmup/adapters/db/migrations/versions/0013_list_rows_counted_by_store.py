"""SQLite: new recipients are counted by the store, not per row by a trigger

Migration 0012's row-level insert trigger ran an upsert into
recipient_counts for every recipient inserted: ~1.5 s of the demo's list
load (100,000 rows) and of `warmup enqueue`'s. The store's two writers of
recipients add one upsert per batch and key in the same transaction
instead: the list's bulk insert (``SQLCampaigns.insert_recipients``) and the
relay's writer (``submission._write_batch``). A guarded trigger (``WHEN
message_id IS NOT NULL``) still cost ~1 s per 100,000 rows, so none is kept.
The update and delete triggers stay: an update or delete does not know the
old rows' keys without reading them, which the trigger does for free, and
claims and records change one row's state at a time (~0.1 s per 40,000).
PostgreSQL is unchanged (statement-level triggers: one upsert per statement
and key already).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ADD_NEW = (
    "INSERT INTO recipient_counts (campaign_id, isp, state, slot, n) "
    "VALUES (NEW.campaign_id, coalesce(NEW.isp, ''), NEW.state, 0, 1) "
    "ON CONFLICT (campaign_id, isp, state, slot) "
    "DO UPDATE SET n = recipient_counts.n + excluded.n;"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER recipient_counts_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER recipient_counts_insert AFTER INSERT ON recipients "
            f"BEGIN {_ADD_NEW} END"
        )
