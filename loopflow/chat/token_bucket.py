"""A token bucket: how often an optional call may be made, bot-wide.

The chat uses it for calls that only decorate a reply, such as Discord's typing
indicator. Discord allows a bot 50 requests per second in all (the global rate limit:
discord.com/developers/docs/topics/rate-limits#global-rate-limit), and discord.py makes
*every* call of the bot wait once it is reached. So a burst of replies that each sent
"typing" would hold back the replies themselves, and the commands, for seconds. The
bucket refuses calls beyond its rate rather than queueing them (a typing indicator that
comes late is worth nothing); the caller skips them or tries again later.
"""

from __future__ import annotations


class TokenBucket:
    """At most ``rate`` calls per second on average and ``burst`` at once.

    :meth:`take` spends one token if there is one. Tokens come back at ``rate`` per
    second, up to ``burst``; the bucket starts full. Raises ``ValueError`` for a rate or
    burst that is not positive.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and burst")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None

    def take(self, now: float, keep: int = 0) -> bool:
        """Spend a token at ``now`` (seconds on the caller's monotonic clock, e.g. the
        event loop's ``time()``): True if the call may be made, False if it should be
        skipped. With ``keep``, only if ``keep`` tokens are left after it: calls that can
        wait give way to those that cannot (a typing indicator's renewal to a first one).
        """
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1 + keep:
            return False
        self._tokens -= 1
        return True
