"""A lane's outcomes over a rolling window (core.lanes.lane rule 7), kept in time order.

Counts are added as things happen (a reply, a late bounce or complaint) with their
instant; :meth:`RollingWindow.counts` first drops what has fallen out of the
window. Pure: time is always passed in.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from warmup.core.lanes.lane import WindowCounts
from warmup.core.model import Verdict

__all__ = ["RollingWindow", "counted"]


def counted(verdict: Verdict, *, late: bool) -> WindowCounts:
    """What one outcome adds to the window: a reply is one attempt (a hard bounce
    counts as one too); a report after the 250 (``late``) adds its hard bounce or
    complaint, its attempt already counted."""
    return _COUNTED[verdict, late]


def _counted(verdict: Verdict, late: bool) -> WindowCounts:
    if not late:
        return WindowCounts(
            attempted=1, hard=int(verdict is Verdict.hard), complaints=0
        )
    return WindowCounts(
        attempted=0,
        hard=int(verdict is Verdict.hard),
        complaints=int(verdict is Verdict.feedback),
    )


# Worked out once per verdict: :func:`counted` is asked once a send.
_COUNTED = {
    (verdict, late): _counted(verdict, late)
    for verdict in Verdict
    for late in (False, True)
}


class RollingWindow:
    def __init__(self, span: timedelta) -> None:
        self.span = span
        self._entries: deque[tuple[datetime, int, int, int]] = deque()
        self._attempted = self._hard = self._complaints = 0

    def add(
        self, at: datetime, *, attempted: int = 0, hard: int = 0, complaints: int = 0
    ) -> None:
        self._entries.append((at, attempted, hard, complaints))
        self._attempted += attempted
        self._hard += hard
        self._complaints += complaints

    def add_counts(self, at: datetime, counts: WindowCounts) -> None:
        self.add(
            at,
            attempted=counts.attempted,
            hard=counts.hard,
            complaints=counts.complaints,
        )

    def add_reply(self, at: datetime, verdict: Verdict) -> None:
        """A reply to a send (:func:`counted`)."""
        self.add_counts(at, counted(verdict, late=False))

    def add_late(self, at: datetime, verdict: Verdict) -> None:
        """A report after the 250 (:func:`counted`)."""
        self.add_counts(at, counted(verdict, late=True))

    def counts(self, now: datetime) -> WindowCounts:
        start = now - self.span
        while self._entries and self._entries[0][0] <= start:
            _, attempted, hard, complaints = self._entries.popleft()
            self._attempted -= attempted
            self._hard -= hard
            self._complaints -= complaints
        return WindowCounts(
            attempted=self._attempted, hard=self._hard, complaints=self._complaints
        )

    def clear(self) -> None:
        """Start afresh (after the window made the lane react)."""
        self._entries.clear()
        self._attempted = self._hard = self._complaints = 0
