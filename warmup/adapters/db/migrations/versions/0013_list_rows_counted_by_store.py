"""SQLite: list recipients are counted by the store, not per row by a trigger

Migration 0012's row-level insert trigger ran an upsert into
recipient_counts for every recipient inserted: about a quarter of the demo's
list load (100,000 rows) and of `warmup enqueue`. The store's bulk insert
(``SQLCampaigns.insert_recipients``, the only writer of list rows, those
without ``message_id``) now adds one upsert per batch and ISP, in the same
transaction. The trigger stays for relay rows (``message_id`` set, written
by the relay's own writer), and the update and delete triggers stay: an
update or delete of recipients does not know the old rows' keys without
reading them, which the trigger does for free. PostgreSQL is unchanged (its
statement-level triggers cost one upsert per statement and key already).

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


def _replace_insert_trigger(when: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER recipient_counts_insert")
    op.execute(
        f"CREATE TRIGGER recipient_counts_insert AFTER INSERT ON recipients "
        f"{when}BEGIN {_ADD_NEW} END"
    )


def upgrade() -> None:
    _replace_insert_trigger("WHEN NEW.message_id IS NOT NULL ")


def downgrade() -> None:
    _replace_insert_trigger("")
