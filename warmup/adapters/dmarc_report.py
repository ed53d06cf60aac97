"""Reading DMARC aggregate reports (RFC 7489 appendix C): XML, gzip, zip, or a mail
carrying one, into :class:`warmup.core.auth.dmarc.DMARCReport`.

They come from strangers, so: the XML goes through defusedxml with DTDs,
entity declarations and external references refused (billion laughs, XXE), and
every decompression stops at ``limit`` bytes (gzip and zip bombs). A refused
report raises :class:`~warmup.core.errors.InputError` naming the source.
"""

from __future__ import annotations

import email
import email.policy
import io
import zipfile
import zlib
from datetime import UTC, datetime
from email.message import Message
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import fromstring

from warmup.core.auth.dmarc import DMARCReport, DMARCRow, merge_rows
from warmup.core.errors import InputError, UnsafeInputError

__all__ = [
    "DEFAULT_LIMIT",
    "is_report_file",
    "read_report",
    "reports_in_mail",
    "unpack",
]

#: Largest XML accepted after decompression (a big receiver's daily report for
#: a handful of IPs is well under 1 MB).
DEFAULT_LIMIT = 20 * 1024 * 1024
_GZIP = b"\x1f\x8b"
_ZIP = b"PK\x03\x04"
_REPORT_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip",
        "application/x-zip-compressed",
        "application/xml",
        "text/xml",
    }
)
_REPORT_SUFFIXES = (".xml", ".xml.gz", ".gz", ".zip")
_ZIP_MEMBERS = 8
# The most messages one row may count, after merging: what the store's 32-bit
# columns hold (a real report counts thousands; a larger one is hostile).
_MOST_MESSAGES = 2**31 - 1


def is_report_file(name: str, head: bytes) -> bool:
    """Whether a file is a report itself (not a mail carrying one)."""
    return (
        name.lower().endswith(_REPORT_SUFFIXES)
        or head.startswith((_GZIP, _ZIP))
        or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
    )


def unpack(data: bytes, *, source: str, limit: int = DEFAULT_LIMIT) -> bytes:
    """The XML inside ``data`` (gzip, zip with one XML member, or XML)."""
    if data.startswith(_GZIP):
        return _gunzip(data, source, limit)
    if data.startswith(_ZIP):
        return _unzip(data, source, limit)
    if len(data) > limit:
        raise UnsafeInputError(source, f"report larger than {limit} bytes; refused")
    return data


def _gunzip(data: bytes, source: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InputError(source, f"not a readable gzip file: {exc}") from None
    if len(out) > limit:
        raise UnsafeInputError(
            source, f"gzip expands past {limit} bytes (a gzip bomb?); refused"
        )
    return out


def _unzip(data: bytes, source: str, limit: int) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if not members or len(members) > _ZIP_MEMBERS:
                raise InputError(
                    source, f"zip holds {len(members)} files; expected one report"
                )
            with archive.open(members[0]) as handle:
                out = handle.read(limit + 1)
    except (
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,  # a compression method zipfile lacks
        RuntimeError,  # an encrypted member
        EOFError,
        ValueError,
    ) as exc:
        raise InputError(source, f"not a readable zip file: {exc}") from None
    if len(out) > limit:
        raise UnsafeInputError(
            source, f"zip expands past {limit} bytes (a zip bomb?); refused"
        )
    return out


def read_report(data: bytes, *, source: str, limit: int = DEFAULT_LIMIT) -> DMARCReport:
    """One report from its file's bytes; InputError if refused or unreadable."""
    xml = unpack(data, source=source, limit=limit)
    try:
        root = fromstring(xml, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise UnsafeInputError(
            source,
            f"XML refused: {type(exc).__name__} (DTDs, entities and external "
            "references are not allowed: an XML bomb or XXE attempt?)",
        ) from None
    except (ParseError, ValueError) as exc:
        raise InputError(source, f"not well-formed XML: {exc}") from None
    return _report(root, source)


def _strip(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(node: Element | None, path: str) -> str:
    """Text at a slash path of local names (namespaces ignored); "" if absent."""
    for name in path.split("/"):
        if node is None:
            return ""
        node = next((c for c in node if _strip(c.tag) == name), None)
    return "" if node is None else (node.text or "").strip()


def _all(node: Element, name: str) -> list[Element]:
    return [child for child in node if _strip(child.tag) == name]


def _report(root: Element, source: str) -> DMARCReport:
    if _strip(root.tag) != "feedback":
        raise InputError(source, f"not a DMARC aggregate report (root <{root.tag}>)")
    meta = next(iter(_all(root, "report_metadata")), None)
    try:
        begin = datetime.fromtimestamp(int(_text(meta, "date_range/begin")), UTC)
        end = datetime.fromtimestamp(int(_text(meta, "date_range/end")), UTC)
    except (ValueError, OverflowError, OSError):
        raise InputError(
            source, "report_metadata/date_range is missing or bad"
        ) from None
    org, report_id = _text(meta, "org_name"), _text(meta, "report_id")
    if not org or not report_id:
        raise InputError(source, "report_metadata lacks org_name or report_id")
    policy = next(iter(_all(root, "policy_published")), None)
    rows = merge_rows(_row(record, begin, source) for record in _all(root, "record"))
    if any(row.messages > _MOST_MESSAGES for row in rows):
        raise InputError(
            source, f"a record's row/count (summed per IP) is over {_MOST_MESSAGES}"
        )
    return DMARCReport(
        org=org[:255],
        report_id=report_id,
        begin=begin,
        end=end,
        policy_domain=_text(policy, "domain").lower(),
        rows=rows,
    )


def _row(record: Element, begin: datetime, source: str) -> DMARCRow:
    row = next(iter(_all(record, "row")), None)
    try:
        count = int(_text(row, "count"))
    except ValueError:
        raise InputError(source, "a record's row/count is not a number") from None
    ip = _text(row, "source_ip")
    if count < 0 or not ip or len(ip) > 64:
        raise InputError(source, f"a record has a bad source_ip or count: {ip!r}")
    results = next(iter(_all(record, "auth_results")), None)
    spf_aligned = _text(row, "policy_evaluated/spf").lower() == "pass"
    dkim_aligned = _text(row, "policy_evaluated/dkim").lower() == "pass"
    disposition = _text(row, "policy_evaluated/disposition").lower()
    return DMARCRow(
        source_ip=ip,
        day=begin.date(),
        header_from=_text(record, "identifiers/header_from").lower()[:255],
        messages=count,
        spf_pass=count * _passes(results, "spf"),
        spf_aligned=count * spf_aligned,
        dkim_pass=count * _passes(results, "dkim"),
        dkim_aligned=count * dkim_aligned,
        dmarc_pass=count * (spf_aligned or dkim_aligned),
        quarantined=count * (disposition == "quarantine"),
        rejected=count * (disposition == "reject"),
    )


def _passes(results: Element | None, method: str) -> bool:
    if results is None:
        return False
    return any(_text(r, "result").lower() == "pass" for r in _all(results, method))


def _candidates(message: Message) -> list[bytes]:
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if kind in _REPORT_TYPES or name.endswith(_REPORT_SUFFIXES):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                found.append(payload)
    return found


def reports_in_mail(
    data: bytes, *, source: str, limit: int = DEFAULT_LIMIT
) -> list[DMARCReport]:
    """The reports attached to a mail ([] when it carries none). A report that is
    refused (bomb, DTD, oversize) raises InputError; an attachment that is not a
    DMARC report at all is skipped."""
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    reports = []
    for number, payload in enumerate(_candidates(message), start=1):
        label = f"{source} (attachment {number})"
        try:
            reports.append(read_report(payload, source=label, limit=limit))
        except UnsafeInputError:
            raise
        except InputError:
            continue  # some other attachment: not ours to read
    return reports
