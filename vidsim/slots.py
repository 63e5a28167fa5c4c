"""Fair sharing of the app's query slots between its users."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator


class Busy(Exception):
    """No slot within the wait, or this session already has a query running."""


class FairSlots:
    """At most `size` queries decode at once, at most one per session, served first come first
    served: a user cannot hold every slot, nor jump the queue of those waiting. How long a slot
    is held is bounded by the query limits (decoding budget and wall clock)."""

    def __init__(self, size: int):
        self.size = size
        self._cond = threading.Condition()
        self._waiting: collections.deque[str] = collections.deque()
        self._holders: set[str] = set()

    @contextlib.contextmanager
    def hold(self, session: str, timeout: float) -> Iterator[None]:
        """Hold a slot for `session` inside the block.

        Raises:
            Busy: the session already holds or waits for a slot, or none freed within `timeout` s.
        """
        with self._cond:
            if session in self._holders or session in self._waiting:
                raise Busy("a query of yours is still running; wait for it to finish")
            self._waiting.append(session)
            got = self._cond.wait_for(
                lambda: len(self._holders) < self.size and self._waiting[0] == session, timeout)
            self._waiting.remove(session)
            self._cond.notify_all()
            if not got:
                raise Busy("the server is busy with other queries; try again in a minute")
            self._holders.add(session)
        try:
            yield
        finally:
            with self._cond:
                self._holders.discard(session)
                self._cond.notify_all()
