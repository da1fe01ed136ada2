"""Whose turn it is to decode: the decode slots shared fairly between visitors
(``_FairSlots``) and the memory budget all decodes in flight share (``_MemoryBudget``).

Imports ``images.limits``; no Pillow.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator

from .limits import DECODE_BUDGET, DECODE_SLOTS


class _FairSlots:
    """``slots`` decodes at once, shared fairly between owners.

    A free slot goes to the waiting owner who holds the fewest slots now, the earliest of
    them first: an owner alone may use every slot, but one with a queue of big images gets
    one turn in the next round, not every turn before a newcomer.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.held: dict[str, int] = {}  # owner -> slots held now
        self.waiting: deque[tuple[str, object]] = deque()  # (owner, turn), in arrival order
        self._changed = threading.Condition()

    def _next(self) -> object | None:
        """The turn that a free slot goes to."""
        best: tuple[int, object] | None = None
        for owner, turn in self.waiting:
            held = self.held.get(owner, 0)
            if best is None or held < best[0]:
                best = (held, turn)
        return best[1] if best else None

    @contextlib.contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        turn = object()
        with self._changed:
            self.waiting.append((owner, turn))
            try:
                self._changed.wait_for(
                    lambda: sum(self.held.values()) < self.slots and self._next() is turn
                )
            finally:
                self.waiting.remove((owner, turn))
                self._changed.notify_all()
            self.held[owner] = self.held.get(owner, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self.held[owner] -= 1
                if not self.held[owner]:
                    del self.held[owner]
                self._changed.notify_all()


_DECODE_TURNS = _FairSlots(DECODE_SLOTS)


class _MemoryBudget:
    """Bytes of decoded pixels held at once by all the uploads being prepared.

    A decode waits until its cost fits beside the others' (first come, first served), so many
    large uploads at once are prepared one after another instead of together; one alone may
    always go ahead.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._turns: deque[object] = deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, cost: int) -> Iterator[None]:
        turn = object()
        with self._changed:
            self._turns.append(turn)
            try:
                self._changed.wait_for(
                    lambda: (
                        self._turns[0] is turn
                        and (self.used == 0 or self.used + cost <= self.total)
                    )
                )
            finally:
                self._turns.remove(turn)
                self._changed.notify_all()
            self.used += cost
        try:
            yield
        finally:
            with self._changed:
                self.used -= cost
                self._changed.notify_all()


_DECODE_MEMORY = _MemoryBudget(DECODE_BUDGET)
