"""Leases: the one way a process owns a run it trains (DESIGN.md "Beyond one machine").

A server and `backprop-live train` may share one database. The process that trains a
run holds a lease on it in the store, with an expiry it renews while the run trains;
another process leaves a leased run alone: it neither marks it `interrupted` nor
trains it. A lease whose expiry passed, or whose owner is a process of this machine
that no longer exists (killed with SIGKILL), may be taken over.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

LEASE_SECONDS = 15.0  # a lease lapses this long after its last renewal
# One name for every lease this process takes: a manager made again in the same process
# (a restart in tests) owns what the one before it held. Immutable, set at import.
_PROCESS_TOKEN = uuid.uuid4().hex[:8]
RENEW_EVERY = LEASE_SECONDS / 3


@dataclass(frozen=True)
class Owner:
    """Who holds a lease: this machine's name, the process id, and a token unique to the
    process's life (so a reused pid is not taken for the old owner)."""

    host: str
    pid: int
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        host, _, rest = text.rpartition(":")
        host, _, pid = host.rpartition(":")
        try:
            return cls(host, int(pid), rest)
        except ValueError:
            return None


def new_owner() -> Owner:
    """This process as a lease owner (the same for every manager it makes)."""
    return Owner(socket.gethostname(), os.getpid(), _PROCESS_TOKEN)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def lease_is_live(holder: str, expires_at: float, me: Owner, now: float | None = None) -> bool:
    """Whether `holder`'s lease still keeps other processes (`me`) away from its run."""
    if holder == str(me):
        return False  # our own: nothing to keep us from
    if expires_at <= (time.time() if now is None else now):
        return False
    owner = Owner.parse(holder)
    return not (owner is not None and owner.host == me.host and not _process_exists(owner.pid))
