"""core.auth.doctor: each verdict from DNS answers, table-driven."""

from __future__ import annotations

from typing import cast

import pytest

from warmup.core.auth.doctor import (
    Check,
    CheckStatus,
    judge_dkim,
    judge_dmarc,
    judge_helo,
    judge_mx,
    judge_ptr,
    judge_ptr_forward,
    judge_spf,
    parse_tags,
)
from warmup.core.auth.spf import SPFRecordError, parse_spf

KEY = ("rsa", "MIIBpub")


@pytest.mark.parametrize(
    ("check", "status", "in_text"),
    [
        (judge_ptr("192.0.2.1", ("a.test",), None), "ok", "a.test"),
        (judge_ptr("192.0.2.1", (), "nxdomain"), "fail", "no PTR record"),
        (judge_ptr("192.0.2.1", (), "temporary"), "warn", "lookup failed"),
        (judge_ptr_forward("192.0.2.1", "a.test", ("192.0.2.1",)), "ok", "->"),
        (judge_ptr_forward("192.0.2.1", "a.test", ("192.0.2.9",)), "fail", "192.0.2.9"),
        (judge_ptr_forward("192.0.2.1", "a.test", ()), "fail", "nothing"),
        (judge_ptr_forward("192.0.2.1", None, ()), "fail", "no PTR name"),
        (judge_helo("192.0.2.1", "A.test", ("a.test",), ()), "ok", "PTR name"),
        (
            judge_helo("192.0.2.1", "h.test", ("a.test",), ("192.0.2.1",)),
            "ok",
            "resolves",
        ),
        (judge_helo("192.0.2.1", "h.test", (), ()), "fail", "the IP's PTR name"),
        (judge_spf("192.0.2.1", "b.test", "pass", "ip4"), "ok", "ip4"),
        (judge_spf("2001:db8::1", "b.test", "softfail", "~all"), "fail", "ip6:2001"),
        (judge_spf("192.0.2.1", "b.test", "temperror", "timeout"), "warn", "ip4:"),
        (judge_dkim("d.test", "s", ("v=DKIM1; k=rsa; p=MIIB pub",), KEY), "ok", ""),
        (judge_dkim("d.test", "s", (), KEY), "fail", "no DKIM record"),
        (judge_dkim("d.test", "s", ("v=DKIM1; p=other",), KEY), "fail", "another key"),
        (judge_dkim("d.test", "s", ("v=DKIM1; p=",), KEY), "fail", "revoked"),
        (judge_dmarc("d.test", ("v=DMARC1; p=reject; rua=mailto:r@d.test",)), "ok", ""),
        (judge_dmarc("d.test", ("v=DMARC1; p=none",)), "warn", "no rua"),
        (judge_dmarc("d.test", ("v=DMARC1; rua=mailto:r@d.test",)), "fail", "p=?"),
        (
            judge_dmarc("d.test", ("v=DMARC1; p=none", "v=DMARC1; p=reject")),
            "fail",
            "more",
        ),
        (judge_dmarc("d.test", ("something else",)), "fail", "no DMARC"),
        (judge_mx("b.test", ("mx.b.test",), ("mx.b.test",), ("192.0.2.1",)), "ok", ""),
        (judge_mx("b.test", ("mx.b.test",), (), ("192.0.2.1",)), "warn", "192.0.2.1"),
        (judge_mx("b.test", (), (), ()), "fail", "no MX"),
    ],
)
def test_verdicts(check: Check, status: str, in_text: str) -> None:
    assert check.status == status, check
    assert in_text in check.detail + " " + check.fix
    assert (check.fix == "") is (status == "ok")


def test_tags_and_check_invariant() -> None:
    assert parse_tags(" V=DKIM1 ; p = AB CD ;junk; p=later") == {
        "v": "DKIM1",
        "p": "ABCD",
    }
    with pytest.raises(ValueError, match="status"):
        Check(ip="", domain="", check="x", status=cast(CheckStatus, "bad"), detail="")


@pytest.mark.parametrize(
    "record", ["v=spf1 all:x.test", "v=spf1 a/33", "v=spf1 mx//129", "v=spf1 ip4:x"]
)
def test_bad_spf_terms(record: str) -> None:
    with pytest.raises(SPFRecordError):
        parse_spf(record)
