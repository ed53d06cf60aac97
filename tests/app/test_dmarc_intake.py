"""DMARC reports mailed in, on a real store: what the engine's verdicts see."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.dmarc_samples import gzipped, record, report_mail, report_xml
from warmup.adapters.db.store import SQLStore
from warmup.adapters.dmarc_report import reports_in_mail
from warmup.app.dmarc import DMARCIntake, auth_verdicts
from warmup.core.auth.dmarc import DMARCReport
from warmup.core.settings import DMARCSettings
from warmup.testing.clock import FakeClock

NOW = datetime(2030, 3, 2, 12, tzinfo=UTC)


def _read(data: bytes, source: str) -> list[DMARCReport]:
    return reports_in_mail(data, source=source)


def _mail(day: date, report_id: str, **auth: str) -> bytes:
    xml = report_xml(day, [record("127.0.0.2", 500, **auth)], report_id=report_id)
    return report_mail(gzipped(xml), "r.xml.gz")


async def test_a_report_dated_in_the_future_is_refused(store: SQLStore) -> None:
    """Stored, a failing day far ahead would stay the IP's latest judged day:
    its ramps held (or, passing, its failures hidden) until that date, whatever
    the real reports say meanwhile."""
    intake = DMARCIntake(store, clock=FakeClock(NOW), read_mail=_read)
    ahead = _mail(date(2031, 1, 1), "ahead", dkim="fail", spf="fail")
    assert await intake.take(ahead, source="m1", envelope_to=()) == "dmarc_refused"
    today = _mail(NOW.date(), "today")
    assert await intake.take(today, source="m2", envelope_to=()) == "dmarc"
    verdicts = await auth_verdicts(store, ["127.0.0.2"], DMARCSettings(), NOW)
    assert verdicts == {"127.0.0.2": None}  # judged on today's report: clean
    # A report of tomorrow (time zones) still counts.
    tomorrow = _mail(date(2030, 3, 3), "tomorrow", dkim="fail", spf="fail")
    assert await intake.take(tomorrow, source="m3", envelope_to=()) == "dmarc"
