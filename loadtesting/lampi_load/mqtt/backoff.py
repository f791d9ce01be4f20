"""How long a device waits before it reconnects: exponential backoff with jitter, kept across short-lived connections.

A device whose connection drops must not reconnect at once: when a broker restarts, thousands would connect in the
same instant, and two devices holding one client id would kick each other off as fast as the broker accepts them.
"""

import random


class Backoff:
    """Pauses (s) that double from `first` up to `longest`, each drawn uniformly from its upper half (jitter).

    A connection that held for `longest` s starts the next outage from `first` again; one that dropped sooner
    (kicked right after connecting, or a broker that accepts and then fails) keeps the doubled pause.
    """

    FIRST = 2.0
    """The first pause's upper end (s): a LAMPI bridge's own restart_timeout is 5-30 s, so a few seconds is kind."""
    LONGEST = 30.0
    """The longest pause (s)."""

    def __init__(self, first: float = FIRST, longest: float = LONGEST, rng: random.Random | None = None):
        if not 0 < first <= longest:
            raise ValueError(f"backoff needs 0 < first <= longest, got {first} and {longest}")
        self.first = first
        self.longest = longest
        self.delay = first
        self._rng = rng or random.Random()
        self._connected_at: float | None = None

    def pause(self) -> float:
        """The next pause in seconds, in [delay/2, delay]; the delay after it doubles (at most `longest`)."""
        delay = self.delay
        self.delay = min(delay * 2, self.longest)
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def connected(self, now: float) -> None:
        """The device connected at `now` (monotonic s)."""
        self._connected_at = now

    def dropped(self, now: float) -> None:
        """The device's connection dropped at `now`: a connection that held long enough resets the delay."""
        if self._connected_at is not None and now - self._connected_at >= self.longest:
            self.delay = self.first
        self._connected_at = None

    def bound(self, outage: float) -> float:
        """The longest a device can take to reconnect once the broker is back from `outage` s away, for a fresh
        delay: the longest pause that can begin while the broker is still away."""
        delay, earliest_try = self.first, self.first / 2
        while earliest_try < outage:  # bounded: each step adds at least first/2 > 0
            delay = min(delay * 2, self.longest)
            earliest_try += delay / 2
        return delay
