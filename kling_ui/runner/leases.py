"""One runner a job, across processes: this runner's leases on the ledger's rows.

Every runner (one per app process, on one machine or many) has a name, its ``holder``
("host:pid:token"). Before each step of a job it takes or renews its lease on that job's
row (``hold``); a job another live runner holds is left to that one, and only watched here.
A heartbeat thread renews every lease of this runner each third of a lease and, for an app
that picks jobs up, claims the free ones: new, lapsed, or a dead process's on this machine
(no need to wait for those to lapse: a restart picks its jobs up at once). On stop, every
lease is released.

Time is the runner's clock (``clock`` for the leases' wall time, ``monotonic`` and ``wait``
for the heartbeat), so a test can move it on by hand. Imports ``history`` only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable

from ..history import Job, Ledger

log = logging.getLogger(__name__)

Wait = Callable[[threading.Condition, "float | None"], object]


class Leases:
    """This runner's hold on its jobs' rows; ``on_free`` gets each job it claims."""

    def __init__(
        self,
        ledger: Ledger,
        lease_s: float,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        wait: Wait,
        cond: threading.Condition,
        on_free: Callable[[Job], None],
    ) -> None:
        self.ledger = ledger
        self.lease_s = lease_s
        self._clock = clock
        self._monotonic = monotonic
        self._wait = wait
        self._cond = cond  # the runner's: its stop wakes the heartbeat
        self._on_free = on_free
        self._stopping = False
        self.picks_up = True
        # This runner's name on its leases: which machine, which process, which runner.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._beat = threading.Thread(target=self._heartbeat, name="kling-leases", daemon=True)

    def start(self, *, pick_up: bool) -> None:
        self.picks_up = pick_up
        if pick_up:
            self.claim_free()
        self._beat.start()

    def stop(self) -> None:
        """Stop the heartbeat and let every lease go."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with contextlib.suppress(Exception):  # a database already gone: the leases lapse
            self.ledger.release(self.holder)

    def until(self) -> tuple[float, float]:
        now = self._clock()
        return now, now + self.lease_s

    def hold(self, job_id: str) -> bool:
        """Take or renew this runner's lease on the job before a step; False when another
        live runner has it (then that one runs it, and this one only watches)."""
        now, until = self.until()
        return self.ledger.hold(job_id, self.holder, now, until)

    def fresh(self, job: Job) -> bool:
        """True when the row just read shows this runner's lease with more than two thirds
        of it left: no one else may take the job before then, so a step needs no write to
        hold it (the heartbeat renews it each third of a lease)."""
        left = (job.lease_until or 0.0) - self._clock()
        return job.lease_owner == self.holder and left > self.lease_s * 2 / 3

    def claim_free(self) -> None:
        """Jobs no live runner holds (new, lapsed, or a dead process's here) become ours."""
        now, until = self.until()
        for job in self.ledger.claim_free(self.holder, now, until, dead=self.dead_holders()):
            self._on_free(job)

    def dead_holders(self) -> set[str]:
        """Holders on this machine whose process is gone (no need to wait for their leases
        to lapse: a restart picks its jobs up at once)."""
        host = socket.gethostname()
        dead = set()
        for holder in self.ledger.holders():
            name, _, rest = holder.partition(":")
            pid = rest.partition(":")[0]
            if name == host and pid.isdigit() and not _alive(int(pid)):
                dead.add(holder)
        return dead

    def held_elsewhere(self, job: Job) -> bool:
        """True when another live runner holds this job's lease."""
        return (
            job.lease_owner is not None
            and job.lease_owner != self.holder
            and (job.lease_until or 0) > self._clock()
            and job.lease_owner not in self.dead_holders()
        )

    def _heartbeat(self) -> None:
        """Every third of a lease: renew ours; when picking up, take the free ones."""
        while True:
            with self._cond:
                beat = self._monotonic() + self.lease_s / 3
                while not self._stopping and (left := beat - self._monotonic()) > 0:
                    self._wait(self._cond, left)
                if self._stopping:
                    return
            try:
                self.ledger.renew(self.holder, self.until()[1])
                if self.picks_up:
                    self.claim_free()
            except Exception:  # the database for a moment: try again next beat
                log.exception("runner: lease heartbeat failed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
