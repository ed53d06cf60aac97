"""Simulated ISP mail servers for ``warmup demo`` and end-to-end tests (DESIGN §7).

Each :class:`SimulatedISP` is an aiosmtpd server on loopback, started in the running
event loop. It keeps a reputation per source IP, throttles and blocks like the real
provider (with its real reply texts), and has unknown, full, greylisting and
later-bouncing mailboxes.
"""

from warmup.sim.isp import DSNRecord, IPStats, SimulatedISP
from warmup.sim.mailbox import PREFIXES, Mailbox, MailboxShares, classify_mailbox
from warmup.sim.profile import PROFILES, ISPProfile
from warmup.sim.reputation import Admission, SourceReputation, Tolerance

__all__ = [
    "PREFIXES",
    "PROFILES",
    "Admission",
    "DSNRecord",
    "IPStats",
    "ISPProfile",
    "Mailbox",
    "MailboxShares",
    "SimulatedISP",
    "SourceReputation",
    "Tolerance",
    "classify_mailbox",
]
