"""recipient_counts: recipients per campaign x ISP x state, kept by triggers

`warmup status` and the dispatcher's maintenance counted the queue with a
scan of recipients (seconds at 10M rows). Triggers on recipients keep the
counts instead: on PostgreSQL a statement-level trigger appends each
statement's net change (no row every writer updates, so nodes never wait on
each other and cannot deadlock on a counter); compaction sums them. On SQLite
(one writer) row-level triggers keep one row per key. Existing rows are
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
down_revision = "0009"
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

_PG_FUNCTIONS = {
    "insert": """
        INSERT INTO recipient_counts (campaign_id, isp, state, n)
        SELECT campaign_id, coalesce(isp, ''), state, count(*)
        FROM new_rows GROUP BY 1, 2, 3""",
    "update": """
        INSERT INTO recipient_counts (campaign_id, isp, state, n)
        SELECT campaign_id, isp, state, sum(d) FROM (
            SELECT campaign_id, coalesce(isp, '') AS isp, state, 1 AS d
            FROM new_rows
            UNION ALL
            SELECT campaign_id, coalesce(isp, ''), state, -1 FROM old_rows
        ) AS change GROUP BY 1, 2, 3 HAVING sum(d) <> 0""",
    "delete": """
        INSERT INTO recipient_counts (campaign_id, isp, state, n)
        SELECT campaign_id, coalesce(isp, ''), state, -count(*)
        FROM old_rows GROUP BY 1, 2, 3""",
}
_PG_TABLES = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}


def _sqlite_add(row: str, sign: str) -> str:
    key = (
        f"campaign_id = {row}.campaign_id AND isp = coalesce({row}.isp, '') "
        f"AND state = {row}.state"
    )
    create = (
        "INSERT INTO recipient_counts (campaign_id, isp, state, n) "
        f"SELECT {row}.campaign_id, coalesce({row}.isp, ''), {row}.state, 0 "
        f"WHERE NOT EXISTS (SELECT 1 FROM recipient_counts WHERE {key});"
    )
    return f"{create} UPDATE recipient_counts SET n = n {sign} 1 WHERE {key};"


_SQLITE_TRIGGERS = {
    "insert": f"AFTER INSERT ON recipients BEGIN {_sqlite_add('NEW', '+')} END",
    "update": (
        "AFTER UPDATE OF campaign_id, isp, state ON recipients "
        "WHEN OLD.state IS NOT NEW.state OR OLD.isp IS NOT NEW.isp "
        "OR OLD.campaign_id IS NOT NEW.campaign_id "
        f"BEGIN {_sqlite_add('OLD', '-')} {_sqlite_add('NEW', '+')} END"
    ),
    "delete": f"AFTER DELETE ON recipients BEGIN {_sqlite_add('OLD', '-')} END",
}


def upgrade() -> None:
    op.create_table(
        "recipient_counts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("isp", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_counts")),
    )
    op.create_index(
        op.f("ix_recipient_counts_campaign_id_isp_state"),
        "recipient_counts",
        ["campaign_id", "isp", "state"],
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
        "INSERT INTO recipient_counts (campaign_id, isp, state, n) "
        "SELECT campaign_id, coalesce(isp, ''), state, count(*) "
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
    op.drop_index(
        op.f("ix_recipient_counts_campaign_id_isp_state"), table_name="recipient_counts"
    )
    op.drop_table("recipient_counts")
