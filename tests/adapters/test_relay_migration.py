"""Migration 0003 over existing data, and back, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, create_engine, inspect, text

from warmup.adapters.db.store import MIGRATIONS, SQLStore

ROWS = [
    "INSERT INTO templates (name, sha256, content, created_at) "
    "VALUES ('t', 'x', 'hi', '2030-01-01')",
    "INSERT INTO campaigns (name, template_id, created_at) "
    "VALUES ('c', 1, '2030-01-01')",
    "INSERT INTO lanes (ip, isp, state, ramp_day, allowance_per_hour, backoff_factor, "
    "throttles, day_attempted, day_delivered, day_soft, day_hard, day_throttle, "
    "day_block, day_complaints, created_at, updated_at) VALUES ('127.0.0.2', 'gmail', "
    "'ramping', 1, 60, 1, 0, 0, 0, 0, 0, 0, 0, 0, '2030-01-01', '2030-01-01')",
    "INSERT INTO recipients (campaign_id, address, domain, priority, state, attempts, "
    "next_attempt_at, queued_at, updated_at) VALUES (1, 'a@gmail.com', 'gmail.com', "
    "-1, 'delivered', 1, '2030-01-01', '2030-01-01', '2030-01-01')",
    "INSERT INTO attempts (recipient_id, lane_id, attempted_at, verdict, reason) "
    "VALUES (1, 1, '2030-01-01', 'delivered', 'delivered')",
]


def _migrate(connection: Connection, revision: str, *, down: bool = False) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def test_upgrade_keeps_data_and_downgrade_restores(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        _migrate(conn, "0002")
        for row in ROWS:
            conn.execute(text(row))
    engine.dispose()
    store = await SQLStore.open(database_url)  # 0002 -> head, foreign keys intact
    assert await store.count_recipients() == {"delivered": 1}
    await store.close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        indexes = {i["name"] for i in inspect(conn).get_indexes("recipients")}
        assert {"uq_recipients_campaign_id_address", "ix_recipients_queued"} <= (
            indexes
        )
        _migrate(conn, "0002", down=True)
        assert "messages" not in inspect(conn).get_table_names()
        uniques = inspect(conn).get_unique_constraints("recipients")
        assert [u["column_names"] for u in uniques] == [["campaign_id", "address"]]
        assert conn.execute(text("SELECT count(*) FROM attempts")).scalar_one() == 1
    engine.dispose()
