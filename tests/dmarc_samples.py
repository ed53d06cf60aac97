"""DMARC aggregate reports for the tests, built in code (RFC 7489 appendix C)."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import UTC, date, datetime, time
from email.message import EmailMessage

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<feedback><report_metadata><org_name>&lol4;</org_name></report_metadata></feedback>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>
"""


def record(
    ip: str,
    count: int,
    *,
    dkim: str = "pass",
    spf: str = "pass",
    disposition: str = "none",
    header_from: str = "shop.test",
) -> str:
    return f"""
  <record>
    <row>
      <source_ip>{ip}</source_ip>
      <count>{count}</count>
      <policy_evaluated>
        <disposition>{disposition}</disposition>
        <dkim>{dkim}</dkim>
        <spf>{spf}</spf>
      </policy_evaluated>
    </row>
    <identifiers><header_from>{header_from}</header_from></identifiers>
    <auth_results>
      <dkim><domain>{header_from}</domain><result>{dkim}</result></dkim>
      <spf><domain>bounce.test</domain><result>pass</result></spf>
    </auth_results>
  </record>"""


def report_xml(
    day: date, records: list[str], *, report_id: str = "r1", org: str = "gmail.test"
) -> bytes:
    begin = int(datetime.combine(day, time(0), UTC).timestamp())
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{org}</org_name>
    <email>noreply-dmarc@{org}</email>
    <report_id>{report_id}</report_id>
    <date_range><begin>{begin}</begin><end>{begin + 86399}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>shop.test</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>
  </policy_published>{"".join(records)}
</feedback>
""".encode()


def gzipped(xml: bytes) -> bytes:
    return gzip.compress(xml)


def zipped(xml: bytes, name: str = "report.xml") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, xml)
    return out.getvalue()


def report_mail(payload: bytes, filename: str, mime: str = "application/gzip") -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc@gmail.test"
    message["To"] = "dmarc@bounce.test"
    message["Subject"] = "Report domain: shop.test Submitter: gmail.test"
    message.set_content("This is an aggregate report from gmail.test.")
    maintype, _, subtype = mime.partition("/")
    message.add_attachment(
        payload, maintype=maintype, subtype=subtype, filename=filename
    )
    return message.as_bytes()
