"""Recipients' claim and lease indexes hold only the rows they serve

``ix_recipients_claim_order`` (state, isp, priority DESC, id) and
``ix_recipients_state_claimed_until`` (state, claimed_until) had every
recipient in them, keyed first by its state: each send moved its row's entry
in both twice (queued -> sending at the claim, sending -> delivered at the
record), four index updates a send, and the claim index at 10M recipients
held the delivered history too. Now:

- ``ix_recipients_queued`` (isp, priority DESC, id) WHERE state = 'queued':
  the claim order, of queued rows only (a claim takes a row out of it, its
  record does not touch it);
- ``ix_recipients_claimed_until`` (claimed_until) WHERE claimed_until IS NOT
  NULL: the leases, of claimed rows only;
- ``ix_recipients_cancelled`` (campaign_id) WHERE state = 'cancelled': what
  resuming a campaign reads (it read the state prefix of the claim index).

Queries that use them spell ``state = 'queued'`` and ``claimed_until IS NOT
NULL`` as literals (warmup.adapters.db.rows.state_is, under_claim): a partial
index serves a bound parameter on neither SQLite nor a prepared PostgreSQL plan.
Measured (issue 16): `warmup run` +3.5 %, and on a copy of a bench database the
claim 8.7 -> 5.1 us a row and the sent update 8.3 -> 5.8 us a row on SQLite.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_QUEUED = sa.text("state = 'queued'")
_CLAIMED = sa.text("claimed_until IS NOT NULL")
_CANCELLED = sa.text("state = 'cancelled'")


def upgrade() -> None:
    op.drop_index("ix_recipients_claim_order", table_name="recipients")
    op.drop_index("ix_recipients_state_claimed_until", table_name="recipients")
    op.create_index(
        "ix_recipients_queued",
        "recipients",
        ["isp", sa.text("priority DESC"), "id"],
        sqlite_where=_QUEUED,
        postgresql_where=_QUEUED,
    )
    op.create_index(
        "ix_recipients_claimed_until",
        "recipients",
        ["claimed_until"],
        sqlite_where=_CLAIMED,
        postgresql_where=_CLAIMED,
    )
    op.create_index(
        "ix_recipients_cancelled",
        "recipients",
        ["campaign_id"],
        sqlite_where=_CANCELLED,
        postgresql_where=_CANCELLED,
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_cancelled", table_name="recipients")
    op.drop_index("ix_recipients_claimed_until", table_name="recipients")
    op.drop_index("ix_recipients_queued", table_name="recipients")
    op.create_index(
        "ix_recipients_state_claimed_until",
        "recipients",
        ["state", "claimed_until"],
    )
    op.create_index(
        "ix_recipients_claim_order",
        "recipients",
        ["state", "isp", sa.text("priority DESC"), "id"],
    )
