"""Daily token limits: server, mate and member budgets, reset at 00:00 UTC."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from loopflow.chat.limits import DayCounts, Limits, LimitSettings, Verdict
from loopflow.errors import SettingError
from loopflow.providers.base import Usage

UTC = timezone.utc
GUILD, OTHER_GUILD = 1, 2
ALICE, BOB = 10, 11


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def limits_at(now: datetime, **settings: object) -> tuple[Limits, Clock]:
    clock = Clock(now)
    limits = Limits(clock=clock)
    limits.configure(GUILD, LimitSettings(**settings))  # type: ignore[arg-type]
    return limits, clock


NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def test_no_limits_allow_everything() -> None:
    limits, _ = limits_at(NOON)
    limits.record(GUILD, "maya", ALICE, Usage(10**9, 10**9))
    assert limits.check(GUILD, "maya", ALICE) == Verdict(True)
    assert limits.check(OTHER_GUILD, "maya", ALICE)  # never configured


def test_the_server_budget_counts_input_and_output_of_everyone() -> None:
    limits, _ = limits_at(NOON, server=1000)
    limits.record(GUILD, "maya", ALICE, Usage(600, 100, cached_input_tokens=500))
    assert limits.check(GUILD, "merlin", BOB)
    limits.record(GUILD, "merlin", BOB, Usage(250, 50))
    verdict = limits.check(GUILD, "maya", ALICE)
    assert not verdict
    assert verdict == Verdict(False, "server", limit=1000, used=1000, resets_at=MIDNIGHT)
    assert verdict.key == "server"
    assert limits.check(OTHER_GUILD, "maya", ALICE)  # another server's budget is its own


def test_a_mate_budget_stops_that_mate_only() -> None:
    limits, _ = limits_at(NOON, mates={"maya": 500})
    limits.record(GUILD, "maya", ALICE, Usage(400, 100))
    verdict = limits.check(GUILD, "maya", BOB)
    assert verdict == Verdict(False, "mate", limit=500, used=500, resets_at=MIDNIGHT, mate="maya")
    assert verdict.key == "mate:maya"
    assert limits.check(GUILD, "merlin", BOB)


def test_the_member_budget_is_each_members_own() -> None:
    limits, _ = limits_at(NOON, member=300)
    limits.record(GUILD, "maya", ALICE, Usage(200, 100))
    verdict = limits.check(GUILD, "merlin", ALICE)
    assert verdict.budget == "member" and verdict.member == ALICE and verdict.used == 300
    assert verdict.key == f"member:{ALICE}"
    assert limits.check(GUILD, "maya", BOB)


def test_the_broadest_used_up_budget_is_named() -> None:
    limits, _ = limits_at(NOON, server=100, member=100, mates={"maya": 100})
    limits.record(GUILD, "maya", ALICE, Usage(100, 0))
    assert limits.check(GUILD, "maya", ALICE).budget == "server"


def test_budgets_reset_at_midnight_utc() -> None:
    limits, clock = limits_at(NOON, server=1000, member=500, mates={"maya": 800})
    clock.now = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    limits.record(GUILD, "maya", ALICE, Usage(900, 100))  # a turn at 23:59:59
    verdict = limits.check(GUILD, "maya", ALICE)
    assert not verdict and verdict.resets_at == MIDNIGHT
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)  # and one at 00:00:01
    assert limits.check(GUILD, "maya", ALICE)
    assert limits.used(GUILD) == 0 and limits.used(GUILD, member=ALICE) == 0
    limits.record(GUILD, "maya", ALICE, Usage(400, 100))
    verdict = limits.check(GUILD, "maya", ALICE)
    assert verdict.budget == "member"
    assert verdict.resets_at == datetime(2026, 12, 2, tzinfo=UTC)


def test_a_turn_that_ends_after_midnight_counts_on_the_new_day() -> None:
    limits, clock = limits_at(datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC), server=1000)
    limits.record(GUILD, "maya", ALICE, Usage(900, 0))
    limits.record(GUILD, "maya", ALICE, Usage(200, 0), at=MIDNIGHT + timedelta(seconds=2))
    clock.now = MIDNIGHT + timedelta(seconds=3)
    assert limits.used(GUILD) == 200 and limits.check(GUILD, "maya", ALICE)


def test_a_late_record_of_yesterday_does_not_count_today() -> None:
    limits, _ = limits_at(NOON, server=1000)
    limits.record(GUILD, "maya", ALICE, Usage(5000, 0), at=NOON - timedelta(days=1))
    assert limits.used(GUILD) == 0 and limits.check(GUILD, "maya", ALICE)


def test_the_80_percent_notice_comes_once_a_day() -> None:
    limits, clock = limits_at(NOON, server=1000)
    assert limits.record(GUILD, "maya", ALICE, Usage(700, 0)) is False
    assert limits.record(GUILD, "maya", ALICE, Usage(100, 0)) is True  # 800: crossed
    assert limits.record(GUILD, "maya", BOB, Usage(100, 0)) is False
    assert limits.record(GUILD, "maya", BOB, Usage(500, 0)) is False  # over, still once
    clock.now = MIDNIGHT + timedelta(hours=1)
    assert limits.record(GUILD, "maya", ALICE, Usage(850, 0)) is True  # a new day


def test_the_notice_comes_when_a_limit_is_set_below_todays_usage() -> None:
    limits, _ = limits_at(NOON)
    limits.record(GUILD, "maya", ALICE, Usage(900, 0))
    limits.configure(GUILD, LimitSettings(server=1000))
    assert limits.record(GUILD, "maya", ALICE, Usage(1, 0)) is True


def test_no_notice_without_a_server_limit() -> None:
    limits, _ = limits_at(NOON, member=10)
    assert limits.record(GUILD, "maya", ALICE, Usage(10**6, 0)) is False


def test_first_refusal_today_once_per_channel_and_budget_per_day() -> None:
    limits, clock = limits_at(NOON, server=10)
    assert limits.first_refusal_today(500, "server") is True
    assert limits.first_refusal_today(500, "server") is False
    assert limits.first_refusal_today(501, "server") is True
    assert limits.first_refusal_today(500, "mate:maya") is True
    clock.now = MIDNIGHT
    assert limits.first_refusal_today(500, "server") is True


def test_first_refusal_map_is_bounded() -> None:
    limits = Limits(clock=Clock(NOON), max_channels=3)
    for channel in range(10):
        limits.first_refusal_today(channel, "server")
    assert limits.tracked_refusals() == 3


def test_member_counters_are_bounded() -> None:
    limits = Limits(clock=Clock(NOON), max_members=5)
    limits.configure(GUILD, LimitSettings(member=100))
    for member in range(20):
        limits.record(GUILD, "maya", member, Usage(1, 0))
    assert limits.tracked_members() == 5
    assert limits.used(GUILD) == 20  # the server's count is not an LRU's


def test_todays_counts_survive_a_restart_through_restore() -> None:
    limits, _ = limits_at(NOON, server=1000, mates={"maya": 400})
    limits.record(GUILD, "maya", ALICE, Usage(300, 50))
    limits.record(GUILD, "merlin", BOB, Usage(100, 0))
    saved = limits.day_counts(GUILD)
    assert saved == DayCounts(NOON.date(), {"maya": 350, "merlin": 100}, {ALICE: 350, BOB: 100})
    assert DayCounts.from_dict(saved.to_dict()) == saved
    restarted, _ = limits_at(NOON + timedelta(hours=1), server=1000, mates={"maya": 400})
    restarted.restore(GUILD, saved)
    assert restarted.used(GUILD) == 450 and restarted.used(GUILD, mate="maya") == 350
    assert restarted.used(GUILD, member=ALICE) == 350
    assert restarted.check(GUILD, "maya", ALICE)
    restarted.record(GUILD, "maya", ALICE, Usage(50, 0))
    assert restarted.check(GUILD, "maya", ALICE).budget == "mate"


def test_yesterdays_counts_are_not_restored() -> None:
    restarted, _ = limits_at(MIDNIGHT + timedelta(hours=1), server=1000)
    restarted.restore(GUILD, DayCounts(NOON.date(), {"maya": 999}, {}))
    assert restarted.used(GUILD) == 0


def test_settings_round_trip_and_say_what_is_left() -> None:
    settings = LimitSettings(server=10_000, member=500, mates={"maya": 2000})
    assert LimitSettings.from_dict(settings.to_dict()) == settings
    assert settings.for_mate("maya") == 2000 and settings.for_mate("merlin") == 0
    limits, _ = limits_at(NOON, **settings.to_dict())
    limits.record(GUILD, "maya", ALICE, Usage(1500, 0))
    assert limits.left(GUILD) == 8500
    assert limits.left(GUILD, mate="maya") == 500
    assert limits.left(GUILD, mate="merlin") is None  # no limit
    assert limits.left(GUILD, member=ALICE) == 0


@pytest.mark.parametrize(
    "settings",
    [{"server": -1}, {"member": -5}, {"mates": {"maya": -1}}, {"server": 1.5}, {"server": True}],
)
def test_a_negative_or_fractional_limit_is_a_clear_error(settings: dict[str, object]) -> None:
    with pytest.raises(SettingError, match="whole number of tokens"):
        LimitSettings(**settings)  # type: ignore[arg-type]


def test_a_stored_settings_value_that_is_not_one_is_an_error() -> None:
    with pytest.raises(SettingError):
        LimitSettings.from_dict({"server": "lots"})
    assert LimitSettings.from_dict({}) == LimitSettings()


def test_unconfiguring_a_server_drops_its_limits() -> None:
    limits, _ = limits_at(NOON, server=1)
    limits.record(GUILD, "maya", ALICE, Usage(5, 0))
    limits.configure(GUILD, LimitSettings())
    assert limits.check(GUILD, "maya", ALICE)
    assert limits.settings(GUILD) == LimitSettings()


def test_day_counts_need_a_date() -> None:
    with pytest.raises(ValueError, match="not stored day counts"):
        DayCounts.from_dict({"day": "today", "mates": {}, "members": {}})
    assert DayCounts.from_dict(DayCounts(date(2026, 1, 1), {}, {}).to_dict()).mates == {}


def test_a_member_whose_data_is_deleted_is_forgotten_everywhere() -> None:
    # red_delete_data_for_user: today's per-member counts are the member's data.
    limits, _ = limits_at(NOON, member=100)
    limits.configure(OTHER_GUILD, LimitSettings(member=100))
    limits.record(GUILD, "maya", ALICE, Usage(100, 0))
    limits.record(OTHER_GUILD, "maya", ALICE, Usage(100, 0))
    limits.record(GUILD, "maya", BOB, Usage(100, 0))
    limits.forget_member(ALICE)
    assert limits.used(GUILD, member=ALICE) == 0 and limits.used(OTHER_GUILD, member=ALICE) == 0
    assert ALICE not in limits.day_counts(GUILD).members
    assert limits.used(GUILD, member=BOB) == 100
    assert limits.used(GUILD) == 200  # the server's and mates' counts are not personal


def test_a_servers_day_counts_are_its_own_whatever_else_is_counted() -> None:
    """What is saved for a server: its mates' and members' counts only, after members
    were let go (the bound), forgotten (a data deletion) and the day turned. Read from
    the server's own counters: other servers' members are not looked through."""
    clock = Clock(NOON)
    limits = Limits(clock=clock, max_members=6)
    for guild in (GUILD, GUILD + 1):
        limits.configure(guild, LimitSettings(member=1_000))
    for member in range(4):  # 0..3 in GUILD, 10..13 in the other server
        limits.record(GUILD, "maya", member, Usage(10, 0))
        limits.record(GUILD + 1, "merlin", 10 + member, Usage(1, 0))
    # 8 counters held at most 6: the two least recently used (0 and 10) were let go
    assert limits.day_counts(GUILD) == DayCounts(NOON.date(), {"maya": 40}, {1: 10, 2: 10, 3: 10})
    assert limits.day_counts(GUILD + 1).members == {11: 1, 12: 1, 13: 1}
    limits.forget_member(2)
    limits.record(GUILD, "maya", 0, Usage(5, 0))  # counted again after it was let go
    assert limits.day_counts(GUILD).members == {0: 5, 1: 10, 3: 10}
    assert limits.day_counts(GUILD + 2) == DayCounts(NOON.date(), {}, {})
    clock.now = NOON + timedelta(days=1)
    assert limits.day_counts(GUILD) == DayCounts((NOON + timedelta(days=1)).date(), {}, {})
    limits.record(GUILD, "maya", 1, Usage(7, 0))
    assert limits.day_counts(GUILD).members == {1: 7}
