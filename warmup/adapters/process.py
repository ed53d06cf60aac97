"""This process and its machine: the local side of IP ownership.

A node restarted on the same machine (after a crash or SIGKILL) need not wait
for its earlier process's heartbeat to lapse: that pid is gone, so its IPs and
claims are taken over at once (warmup.app.ownership).
"""

from __future__ import annotations

import os
import socket

__all__ = ["LocalProcesses"]


class LocalProcesses:
    def __init__(self) -> None:
        self.machine = socket.gethostname()
        self.pid = os.getpid()

    def alive(self, pid: int) -> bool:
        """Whether a process with this id runs here (signal 0 only checks)."""
        if pid <= 0:
            return True  # unknown: let its heartbeat decide
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by another user
        return True
