"""recipient_counts: recipients per campaign x ISP x state, kept by triggers

`warmup status` and the dispatcher's maintenance counted the queue with a
scan of recipients (seconds at 10M rows). Triggers on recipients keep the
counts instead: on PostgreSQL a statement-level trigger adds each
statement's net change to its transaction's own row per key (slot = the
transaction id: no row every writer updates, so nodes never wait on each other
and cannot deadlock on a counter); compaction folds them into slot 0. On
SQLite (one writer) a row-level upsert keeps one row per key (slot 0). Existing rows are
counted once here. Also partial indexes for the held recipients `status`
lists (queued, last reply "held: ...") and for the metrics' oldest pending
and retry backlog.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_PARTIAL = {
    "ix_recipients_held": (
        "campaign_id",
        "state = 'queued' AND last_reply LIKE 'held: %'",
    ),
    "ix_recipients_pending_queued_at": ("queued_at", "state IN ('queued', 'sending')"),
    "ix_recipients_retrying": ("id", "state = 'queued' AND attempts > 0"),
}

# Each row's key and its change; a transaction's changes to a key share a row
# (slot = its transaction id), so concurrent writers never touch the same row.
_UPSERT = (
    "ON CONFLICT (campaign_id, isp, state, slot) "
    "DO UPDATE SET n = recipient_counts.n + excluded.n"
)
_INTO = "INSERT INTO recipient_counts (campaign_id, isp, state, slot, n)"
_PG_FUNCTIONS = {
    "insert": f"""
        {_INTO}
        SELECT campaign_id, coalesce(isp, ''), state, txid_current(), count(*)
        FROM new_rows GROUP BY 1, 2, 3 {_UPSERT}""",
    "update": f"""
        {_INTO}
        SELECT campaign_id, isp, state, txid_current(), sum(d) FROM (
            SELECT campaign_id, coalesce(isp, '') AS isp, state, 1 AS d
            FROM new_rows
            UNION ALL
            SELECT campaign_id, coalesce(isp, ''), state, -1 FROM old_rows
        ) AS change GROUP BY 1, 2, 3 HAVING sum(d) <> 0 {_UPSERT}""",
    "delete": f"""
        {_INTO}
        SELECT campaign_id, coalesce(isp, ''), state, txid_current(), -count(*)
        FROM old_rows GROUP BY 1, 2, 3 {_UPSERT}""",
}
_PG_TABLES = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}


def _sqlite_add(row: str, change: int) -> str:
    return (
        f"{_INTO} VALUES ({row}.campaign_id, coalesce({row}.isp, ''), "
        f"{row}.state, 0, {change}) {_UPSERT};"
    )


_SQLITE_TRIGGERS = {
    "insert": f"AFTER INSERT ON recipients BEGIN {_sqlite_add('NEW', 1)} END",
    "update": (
        "AFTER UPDATE OF campaign_id, isp, state ON recipients "
        "WHEN OLD.state IS NOT NEW.state OR OLD.isp IS NOT NEW.isp "
        "OR OLD.campaign_id IS NOT NEW.campaign_id "
        f"BEGIN {_sqlite_add('OLD', -1)} {_sqlite_add('NEW', 1)} END"
    ),
    "delete": f"AFTER DELETE ON recipients BEGIN {_sqlite_add('OLD', -1)} END",
}


def upgrade() -> None:
    op.create_table(
        "recipient_counts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("isp", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_counts")),
    )
    op.create_index(
        "uq_recipient_counts_key",
        "recipient_counts",
        ["campaign_id", "isp", "state", "slot"],
        unique=True,
    )
    for name, (column, where) in _PARTIAL.items():
        op.create_index(
            name,
            "recipients",
            [column],
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )
    op.execute(
        f"{_INTO} SELECT campaign_id, coalesce(isp, ''), state, 0, count(*) "
        "FROM recipients GROUP BY campaign_id, coalesce(isp, ''), state"
    )
    if op.get_bind().dialect.name == "postgresql":
        for event, body in _PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION recipient_counts_{event}() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER recipient_counts_{event} AFTER {event.upper()} "
                f"ON recipients REFERENCING {_PG_TABLES[event]} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION recipient_counts_{event}()"
            )
    else:
        for event, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER recipient_counts_{event} {body}")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in _PG_FUNCTIONS:
        op.execute(
            f"DROP TRIGGER recipient_counts_{event}"
            + (" ON recipients" if postgres else "")
        )
        if postgres:
            op.execute(f"DROP FUNCTION recipient_counts_{event}()")
    for name in _PARTIAL:
        op.drop_index(name, table_name="recipients")
    op.drop_index("uq_recipient_counts_key", table_name="recipient_counts")
    op.drop_table("recipient_counts")
