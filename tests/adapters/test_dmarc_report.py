"""Reading DMARC aggregate reports: formats, figures, and what is refused."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime

import pytest

from tests.dmarc_samples import (
    BILLION_LAUGHS,
    XXE,
    gzipped,
    record,
    report_mail,
    report_xml,
    zipped,
)
from warmup.adapters.db.store import SQLStore
from warmup.adapters.dmarc_report import read_report, reports_in_mail
from warmup.core.auth.dmarc import DMARCRow
from warmup.core.errors import InputError, UnsafeInputError

DAY = date(2030, 3, 1)
XML = report_xml(
    DAY,
    [
        record("127.0.0.2", 150, dkim="fail"),
        record("127.0.0.2", 50),
        record("127.0.0.3", 7, dkim="fail", spf="fail", disposition="reject"),
    ],
)


def test_rows_per_ip_day_and_domain() -> None:
    report = read_report(XML, source="r.xml")
    assert (report.org, report.report_id, report.policy_domain) == (
        "gmail.test",
        "r1",
        "shop.test",
    )
    assert report.rows == (
        DMARCRow(
            source_ip="127.0.0.2",
            day=DAY,
            header_from="shop.test",
            messages=200,
            spf_pass=200,
            spf_aligned=200,
            dkim_pass=50,
            dkim_aligned=50,
            dmarc_pass=200,
        ),
        DMARCRow(
            source_ip="127.0.0.3",
            day=DAY,
            header_from="shop.test",
            messages=7,
            spf_pass=7,  # auth_results: SPF passed for the bounce domain, unaligned
            rejected=7,
        ),
    )


@pytest.mark.parametrize("pack", [gzipped, zipped, lambda xml: xml])
def test_every_file_format_reads_the_same(pack: object) -> None:
    assert callable(pack)
    assert read_report(pack(XML), source="f") == read_report(XML, source="x")


def test_namespaced_reports_read_too() -> None:
    xml = XML.replace(
        b"<feedback>", b'<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">'
    )
    assert read_report(xml, source="ns").rows == read_report(XML, source="x").rows


@pytest.mark.parametrize(
    ("mime", "filename", "pack"),
    [
        ("application/gzip", "gmail.test!shop.test!1!2.xml.gz", gzipped),
        ("application/zip", "gmail.test!shop.test!1!2.zip", zipped),
        ("application/octet-stream", "report.xml", lambda xml: xml),
    ],
)
def test_mail_attachments(mime: str, filename: str, pack: object) -> None:
    assert callable(pack)
    mail = report_mail(pack(XML), filename, mime)
    [report] = reports_in_mail(mail, source="m")
    assert report.messages == 207


def test_mail_without_a_report_is_not_one() -> None:
    dsn = b"From: MAILER-DAEMON@x\r\nSubject: failure\r\n\r\nno such user\r\n"
    assert reports_in_mail(dsn, source="m") == []
    other = report_mail(gzipped(b"<html>not a report</html>"), "x.gz")
    assert reports_in_mail(other, source="m") == []


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (BILLION_LAUGHS, "XML refused"),
        (XXE, "XML refused"),
        (gzipped(BILLION_LAUGHS), "XML refused"),
        (gzip.compress(b"<feedback>" + b" " * 3_000_000), "gzip bomb"),
        (zipped(b"<feedback>" + b" " * 3_000_000), "zip bomb"),
        (b"<feedback>" + b" " * 3_000_000, "larger than"),
    ],
)
def test_bombs_are_refused_with_a_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(UnsafeInputError, match=words) as caught:
        read_report(data, source="evil.xml", limit=1_000_000)
    assert str(caught.value).startswith("evil.xml")
    # Carried by mail, the refusal is not swallowed as "not a report".
    with pytest.raises(UnsafeInputError):
        reports_in_mail(report_mail(data, "evil.xml.gz"), source="m", limit=1_000_000)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<feedback><unclosed>", "not well-formed"),
        (b"<html/>", "not a DMARC aggregate report"),
        (b"<feedback/>", "date_range"),
        (report_xml(DAY, [record("127.0.0.2", 1)]).replace(b">1<", b">x<"), "count"),
        (b"\x1f\x8bnot gzip", "gzip"),
        (b"PK\x03\x04broken", "zip"),
    ],
)
def test_unreadable_reports_say_why(data: bytes, words: str) -> None:
    with pytest.raises(InputError, match=words):
        read_report(data, source="bad")


def test_an_encrypted_zip_is_unreadable_not_a_crash() -> None:
    data = bytearray(zipped(XML))
    # Set the "encrypted" flag bit in the local and the central directory header.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x01
    with pytest.raises(InputError, match="not a readable zip"):
        read_report(bytes(data), source="enc.zip")


# The store keeps counts in 32-bit columns (PostgreSQL INTEGER).
_MOST = 2**31 - 1


@pytest.mark.parametrize(
    "records",
    [
        [record("127.0.0.2", _MOST + 1)],
        [record("127.0.0.2", 10**30)],  # SQLite: a raw OverflowError in the driver
        [record("127.0.0.2", _MOST), record("127.0.0.2", 1)],  # merged past it
    ],
)
def test_counts_the_store_cannot_hold_are_refused(records: list[str]) -> None:
    """A stranger's report with a count past the columns' range must be a clear
    refusal, not a database error on every retry of the mail that carries it."""
    with pytest.raises(InputError, match="count"):
        read_report(report_xml(DAY, records), source="big.xml")


async def test_the_largest_count_read_is_stored(store: SQLStore) -> None:
    report = read_report(
        report_xml(DAY, [record("127.0.0.2", _MOST)]), source="most.xml"
    )
    assert await store.save_dmarc(report, datetime(2030, 3, 2, tzinfo=UTC)) == 1
