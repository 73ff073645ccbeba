"""Daily token limits: a server's, a mate's, and each member's, reset at 00:00 UTC.

A limit is a number of tokens per UTC day (0: none), counting every input token (cached
ones included: they fill the context like any other) plus every output token
(:attr:`Usage.total_tokens <loopflow.providers.base.Usage.total_tokens>`). Limits are
checked before a turn, from counters in memory, so no provider request is made once a
budget is used up; a turn that is allowed may end past the limit (its size is unknown
until it ends), and the next one is refused.

The cog calls, per server: :meth:`Limits.configure` when it loads the settings or an
admin changes one; per turn :meth:`Limits.check` before the request and
:meth:`Limits.record` after it (stopped and failed replies too, with what they billed);
:meth:`Limits.first_refusal_today` to say the refusal in a channel once a day; and
:meth:`Limits.day_counts` / :meth:`Limits.restore` to keep today's counts over a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional

from loopflow.chat.bounded import LRUMap
from loopflow.cost import utc_day
from loopflow.errors import SettingError
from loopflow.providers.base import Usage

#: The share of the server's limit at which admins get their one notice of the day.
NOTICE_SHARE = 0.8


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def next_midnight(now: datetime) -> datetime:
    """The first 00:00 UTC after ``now``: when today's budgets reset."""
    return datetime.combine(utc_day(now) + timedelta(days=1), time(), timezone.utc)


def _tokens(kind: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingError(
            f"The {kind} limit must be a whole number of tokens per day, 0 for none."
        )
    return value


@dataclass(frozen=True)
class LimitSettings:
    """One server's limits in tokens per UTC day (0: none): the whole ``server``'s, each
    ``member``'s, and per mate name in ``mates``. Raises :class:`SettingError` for a
    limit that is not a whole number of tokens (negative, fractional)."""

    server: int = 0
    member: int = 0
    mates: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _tokens("server", self.server)
        _tokens("member", self.member)
        if not isinstance(self.mates, Mapping):
            raise SettingError("Mate limits must map mate names to tokens per day.")
        for name, limit in self.mates.items():
            _tokens(f"{name!s:.32} mate", limit)
        # Mates without a limit are left out: the map only holds real limits.
        object.__setattr__(self, "mates", {n: v for n, v in self.mates.items() if v})

    def for_mate(self, name: str) -> int:
        """The limit of the mate ``name`` (0: none)."""
        return self.mates.get(name, 0)

    @property
    def any(self) -> bool:
        """Whether any limit is set."""
        return bool(self.server or self.member or self.mates)

    def to_dict(self) -> dict[str, Any]:
        """``{"server": n, "member": n, "mates": {name: n}}`` for the store."""
        return {"server": self.server, "member": self.member, "mates": dict(self.mates)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LimitSettings:
        """The inverse of :meth:`to_dict` (missing keys: no limit); :class:`SettingError`
        for bad values."""
        if not isinstance(data, Mapping):
            raise SettingError(f"not stored limits: {data!r:.80}")
        return cls(data.get("server", 0), data.get("member", 0), dict(data.get("mates", {})))


@dataclass(frozen=True)
class Verdict:
    """Whether a turn may run. When not, which ``budget`` is used up (``"server"``,
    ``"mate"`` with its ``mate``, or ``"member"`` with its ``member`` id), its ``limit``,
    the tokens ``used`` today, and ``resets_at`` (the next 00:00 UTC)."""

    allowed: bool
    budget: str = ""
    limit: int = 0
    used: int = 0
    resets_at: Optional[datetime] = None
    mate: str = ""
    member: int = 0

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def key(self) -> str:
        """The used-up budget as one string: ``"server"``, ``"mate:maya"``,
        ``"member:<id>"`` (for :meth:`Limits.first_refusal_today`)."""
        if self.budget == "mate":
            return f"mate:{self.mate}"
        if self.budget == "member":
            return f"member:{self.member}"
        return self.budget


ALLOWED = Verdict(True)


@dataclass(frozen=True)
class DayCounts:
    """One server's token counts of one UTC ``day``: per mate name and per member id
    (the server's count is the mates' sum). What the store keeps over a restart."""

    day: date
    mates: Mapping[str, int]
    members: Mapping[int, int]

    def to_dict(self) -> dict[str, Any]:
        """``{"day": "2026-11-30", "mates": {name: n}, "members": {"<id>": n}}``."""
        members = {str(member): used for member, used in self.members.items()}
        return {"day": self.day.isoformat(), "mates": dict(self.mates), "members": members}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DayCounts:
        """The inverse of :meth:`to_dict`; :class:`ValueError` for anything else."""
        try:
            mates = {str(name): _tokens("count", n) for name, n in data["mates"].items()}
            members = {int(m): _tokens("count", n) for m, n in data["members"].items()}
            return cls(date.fromisoformat(data["day"]), mates, members)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not stored day counts: {data!r:.80}") from exc


class Limits:
    """Today's counters and every server's limits, in memory (see the module docstring).

    ``clock`` returns the current aware time (tests pass their own). Counters reset when
    the clock passes 00:00 UTC. Maps are bounded: per-member counters keep the
    ``max_members`` most recently used (a member forgotten that way starts the day
    again at 0), the refusal marks the ``max_channels`` newest; server and mate counters
    hold what was used today and limits the servers that set some.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] = utc_now,
        max_members: int = 100_000,
        max_channels: int = 10_000,
    ) -> None:
        self._clock = clock
        self._settings: dict[int, LimitSettings] = {}
        self._max_members = max_members
        self._max_channels = max_channels
        self._start_day(clock())

    def _start_day(self, now: datetime) -> None:
        self._day = utc_day(now)
        self._resets_at = next_midnight(now)
        self._servers: dict[int, int] = {}
        self._mates: dict[tuple[int, str], int] = {}
        self._members: LRUMap[tuple[int, int], int] = LRUMap(
            self._max_members, on_evict=self._let_go
        )
        # Who is counted per server (its mates, its members), so that a server's counts
        # are read without looking through every other server's.
        self._mates_of: dict[int, set[str]] = {}
        self._members_of: dict[int, set[int]] = {}
        self._noticed: set[int] = set()
        self._refused: LRUMap[tuple[int, str], bool] = LRUMap(self._max_channels)

    def _today(self, now: datetime) -> None:
        if now >= self._resets_at:
            self._start_day(now)

    # -- settings

    def configure(self, guild_id: int, settings: LimitSettings) -> None:
        """Set ``guild_id``'s limits (all zero: none)."""
        if settings.any:
            self._settings[guild_id] = settings
        else:
            self._settings.pop(guild_id, None)

    def settings(self, guild_id: int) -> LimitSettings:
        """``guild_id``'s limits (none configured: all zero)."""
        return self._settings.get(guild_id) or LimitSettings()

    # -- per turn

    def check(self, guild_id: int, mate: str, member_id: int) -> Verdict:
        """Whether ``member_id`` may get a turn of ``mate`` in ``guild_id`` now: the
        first used-up budget of the server, the mate and the member, in that order (the
        broadest: a narrower one would not help), or :data:`ALLOWED`. In memory only."""
        settings = self._settings.get(guild_id)
        if settings is None:
            return ALLOWED
        self._today(self._clock())
        if settings.server:
            used = self._servers.get(guild_id, 0)
            if used >= settings.server:
                return Verdict(False, "server", settings.server, used, self._resets_at)
        limit = settings.mates.get(mate, 0)
        if limit:
            used = self._mates.get((guild_id, mate), 0)
            if used >= limit:
                return Verdict(False, "mate", limit, used, self._resets_at, mate=mate)
        if settings.member:
            used = self._members.get((guild_id, member_id), 0)
            if used >= settings.member:
                return Verdict(
                    False, "member", settings.member, used, self._resets_at, member=member_id
                )
        return ALLOWED

    def record(
        self,
        guild_id: int,
        mate: str,
        member_id: int,
        usage: Usage,
        at: Optional[datetime] = None,
    ) -> bool:
        """Count ``usage`` (its :attr:`~Usage.total_tokens`) for the server, the mate and
        the member, on the UTC day of ``at`` (default: now); a record of a day already
        over counts nothing. Returns True once a day per server: when this record brings
        the server's usage to :data:`NOTICE_SHARE` of its limit or more (tell the admins).
        """
        now = at if at is not None else self._clock()
        self._today(now)
        if utc_day(now) != self._day:
            return False
        tokens = usage.total_tokens
        used = self._servers.get(guild_id, 0) + tokens
        self._servers[guild_id] = used
        self._count_mate(guild_id, mate, tokens)
        self._count_member(guild_id, member_id, tokens)
        limit = self.settings(guild_id).server
        if not limit or used < limit * NOTICE_SHARE or guild_id in self._noticed:
            return False
        self._noticed.add(guild_id)
        return True

    def first_refusal_today(self, channel_id: int, budget: str) -> bool:
        """True the first time today ``budget`` (:attr:`Verdict.key`) is refused in
        ``channel_id``, False after: the channel gets one line, later messages a
        reaction. Bounded to the ``max_channels`` newest marks."""
        self._today(self._clock())
        key = (channel_id, budget)
        if key in self._refused:
            return False
        self._refused[key] = True
        return True

    # -- what is used and left

    def used(self, guild_id: int, mate: Optional[str] = None, member: Optional[int] = None) -> int:
        """Tokens used today: by ``mate``, by ``member``, or (neither) by the server."""
        self._today(self._clock())
        if mate is not None:
            return self._mates.get((guild_id, mate), 0)
        if member is not None:
            return self._members.get((guild_id, member), 0)
        return self._servers.get(guild_id, 0)

    def left(
        self, guild_id: int, mate: Optional[str] = None, member: Optional[int] = None
    ) -> Optional[int]:
        """Tokens left today in the server's budget, ``mate``'s, or ``member``'s (never
        below 0); None when that budget has no limit."""
        settings = self.settings(guild_id)
        if mate is not None:
            limit = settings.for_mate(mate)
        elif member is not None:
            limit = settings.member
        else:
            limit = settings.server
        if not limit:
            return None
        return max(0, limit - self.used(guild_id, mate, member))

    def resets_at(self) -> datetime:
        """The next 00:00 UTC."""
        self._today(self._clock())
        return self._resets_at

    # -- over a restart

    def day_counts(self, guild_id: int) -> DayCounts:
        """Today's counts of ``guild_id``, for the store."""
        self._today(self._clock())
        mates = {name: self._mates[guild_id, name] for name in self._mates_of.get(guild_id, ())}
        # Ids first: reading an LRUMap entry refreshes it (it may let none go).
        ids = list(self._members_of.get(guild_id, ()))
        members = {member: self._members[guild_id, member] for member in ids}
        return DayCounts(self._day, mates, members)

    def restore(self, guild_id: int, counts: DayCounts) -> None:
        """Put back counts saved by :meth:`day_counts` (added to what is counted since);
        counts of another day than today are ignored."""
        self._today(self._clock())
        if counts.day != self._day:
            return
        for name, used in counts.mates.items():
            self._count_mate(guild_id, name, used)
            self._servers[guild_id] = self._servers.get(guild_id, 0) + used
        for member, used in counts.members.items():
            self._count_member(guild_id, member, used)

    def forget_member(self, member_id: int) -> None:
        """Drop ``member_id``'s counters in every server (a data deletion request); the
        server's and the mates' counts stay, they are no one's in particular."""
        for key in [key for key in self._members if key[1] == member_id]:
            del self._members[key]
            self._let_go(key, 0)

    def _count_mate(self, guild_id: int, mate: str, tokens: int) -> None:
        self._mates[guild_id, mate] = self._mates.get((guild_id, mate), 0) + tokens
        self._mates_of.setdefault(guild_id, set()).add(mate)

    def _count_member(self, guild_id: int, member_id: int, tokens: int) -> None:
        self._members[guild_id, member_id] = self._members.get((guild_id, member_id), 0) + tokens
        self._members_of.setdefault(guild_id, set()).add(member_id)  # the newest: kept

    def _let_go(self, key: tuple[int, int], _used: int) -> None:
        """A member's counter is dropped (the bound, a data deletion): not counted any more."""
        guild_id, member_id = key
        members = self._members_of.get(guild_id)
        if members is not None:
            members.discard(member_id)
            if not members:
                del self._members_of[guild_id]

    def tracked_members(self) -> int:
        """How many member counters are held (bounded by ``max_members``)."""
        return len(self._members)

    def tracked_refusals(self) -> int:
        """How many refusal marks are held (bounded by ``max_channels``)."""
        return len(self._refused)
