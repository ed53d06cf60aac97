"""In-memory stand-ins for the Sender and Resolver ports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from warmup.app.ports import MXAnswer
from warmup.core.attempt import SendOutcome
from warmup.core.model import DNSError, SendStage
from warmup.core.replies.classify import ConnectionFailure, parse_reply
from warmup.core.settings import SourceIP

__all__ = ["FakeResolver", "FakeSender", "SentMessage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SentMessage:
    at: datetime
    source: str
    host: str
    port: int
    sender: str
    recipient: str
    message: bytes


@dataclass(slots=True)
class FakeSender:
    """Records every send; ``reply_for(source_ip, recipient)`` scripts the reply.
    Sends to a host in ``unreachable`` fail to connect (refused), unrecorded."""

    now: Callable[[], datetime]
    reply_for: Callable[[str, str], str] = lambda _ip, _rcpt: "250 2.0.0 OK"
    unreachable: set[str] = field(default_factory=set)
    sent: list[SentMessage] = field(default_factory=list)
    closed: bool = False

    async def send(
        self,
        *,
        source: SourceIP,
        host: str,
        port: int,
        sender: str,
        recipient: str,
        message: bytes,
    ) -> SendOutcome:
        if host in self.unreachable:
            return SendOutcome(
                reply=None,
                failure=ConnectionFailure.refused,
                detail=f"connection to {host}:{port} refused",
                stage=SendStage.connect,
            )
        self.sent.append(
            SentMessage(
                at=self.now(),
                source=source.address,
                host=host,
                port=port,
                sender=sender,
                recipient=recipient,
                message=message,
            )
        )
        reply = parse_reply(self.reply_for(source.address, recipient))
        return SendOutcome(
            reply=reply, stage=SendStage.data if reply.code == 250 else SendStage.rcpt
        )

    async def close(self) -> None:
        self.closed = True


@dataclass(slots=True)
class FakeResolver:
    """MX answers from a mapping; unknown domains get NXDOMAIN."""

    answers: Mapping[str, MXAnswer] = field(default_factory=dict)

    async def mx(self, domain: str) -> MXAnswer:
        return self.answers.get(domain, MXAnswer(error=DNSError.nxdomain))
