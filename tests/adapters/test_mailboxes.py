"""MaildirInbox hands out unseen mails oldest first, by the time in their names."""

from __future__ import annotations

from pathlib import Path

from warmup.adapters.mailboxes import MaildirInbox


def test_unseen_mails_come_in_delivery_order_not_text_order(tmp_path: Path) -> None:
    inbox = MaildirInbox(tmp_path / "box")
    # As Python's mailbox names them: seconds, then microseconds and a counter
    # that are not zero-padded, so text order would put M99 after M123456.
    names = [
        "1764789999.M900000P7Q1.host",
        "1764790000.M99P7Q2.host",
        "1764790000.M123456P7Q3.host",
        "1764790001.M5P7Q10.host",
        "1764790001.M5P7Q11.host",
    ]
    for n, name in enumerate(reversed(names)):
        (tmp_path / "box" / "new" / name).write_bytes(b"Subject: %d\r\n\r\n" % n)
    assert [key for key, _ in inbox.unseen()] == names
    # And the limit keeps the oldest.
    assert [key for key, _ in inbox.unseen(limit=2)] == names[:2]
