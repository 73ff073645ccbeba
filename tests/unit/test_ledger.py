"""UsageLedger: one mate's usage per UTC day, the last 35 days kept, older ones rolled up."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from loopflow.cost import LEDGER_DAYS, MAX_MODELS, MateUsage, UsageLedger, fill_usage
from loopflow.pricing import Prices
from loopflow.providers.base import Usage

UTC = timezone.utc
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_usage_is_counted_on_its_utc_day() -> None:
    ledger = UsageLedger()
    # 23:30 in New York on the 29th is 04:30 UTC on the 30th.
    new_york = timezone(timedelta(hours=-5))
    ledger.add(Usage(100, 10), datetime(2026, 11, 29, 23, 30, tzinfo=new_york))
    ledger.add(Usage(50, 5, 40), datetime(2026, 11, 30, 0, 0, 1, tzinfo=UTC))
    ledger.add(Usage(7, 1), datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC))
    assert ledger.today(NOON) == Usage(150, 15, 40)
    assert ledger.today(NOON - timedelta(days=1)) == Usage(7, 1)
    assert ledger.days == {date(2026, 11, 30): Usage(150, 15, 40), date(2026, 11, 29): Usage(7, 1)}


def test_a_naive_time_is_taken_as_utc() -> None:
    ledger = UsageLedger()
    ledger.add(Usage(1, 1), datetime(2026, 11, 30, 23, 59))
    assert ledger.today(datetime(2026, 11, 30, 1, 0, tzinfo=UTC)) == Usage(1, 1)


def test_last_days_sums_the_window_ending_today() -> None:
    ledger = UsageLedger()
    for back in range(LEDGER_DAYS):
        ledger.add(Usage(10, 1), NOON - timedelta(days=back))
    assert ledger.last_days(1, NOON) == Usage(10, 1)
    assert ledger.last_days(30, NOON) == Usage(300, 30)
    assert ledger.total() == Usage(10 * LEDGER_DAYS, LEDGER_DAYS)
    with pytest.raises(ValueError, match="1 to 35 days"):
        ledger.last_days(36, NOON)


def test_days_past_the_window_roll_into_the_older_total() -> None:
    ledger = UsageLedger()
    for back in range(40):  # 40 days of usage, oldest last
        ledger.add(Usage(10, 1), NOON - timedelta(days=back))
    assert len(ledger.days) == LEDGER_DAYS
    assert min(ledger.days) == NOON.date() - timedelta(days=LEDGER_DAYS - 1)
    assert ledger.older == Usage(50, 5)
    assert ledger.total() == Usage(400, 40)  # pruning never loses a token


def test_adding_on_a_later_day_prunes_what_fell_out() -> None:
    ledger = UsageLedger()
    ledger.add(Usage(5, 5), NOON)
    ledger.add(Usage(1, 1), NOON + timedelta(days=LEDGER_DAYS))
    assert ledger.days == {(NOON + timedelta(days=LEDGER_DAYS)).date(): Usage(1, 1)}
    assert ledger.older == Usage(5, 5)


def test_prune_alone_rolls_up_for_a_quiet_mate() -> None:
    ledger = UsageLedger()
    ledger.add(Usage(5, 5), NOON)
    ledger.prune(NOON + timedelta(days=LEDGER_DAYS - 1))
    assert ledger.days  # still inside the window
    ledger.prune((NOON + timedelta(days=LEDGER_DAYS)).date())
    assert not ledger.days and ledger.older == Usage(5, 5)


def test_the_ledger_round_trips_as_compact_json() -> None:
    ledger = UsageLedger()
    ledger.add(Usage(1200, 300, 1024), NOON)
    ledger.add(Usage(800, 100, 0, 200), NOON - timedelta(days=1))
    ledger.add(Usage(3, 2, estimated=True), NOON - timedelta(days=60))
    stored = json.loads(json.dumps(ledger.to_dict()))
    assert stored == {
        "days": {"2026-11-29": [800, 100, 0, 200], "2026-11-30": [1200, 300, 1024]},
        "older": [3, 2, 0, 0, 1],
    }
    assert UsageLedger.from_dict(stored) == ledger


def test_an_empty_ledger_is_tiny() -> None:
    assert UsageLedger().to_dict() == {"days": {}, "older": []}
    assert UsageLedger.from_dict({}) == UsageLedger()


@pytest.mark.parametrize(
    "bad",
    [
        {"days": {"yesterday": [1, 2]}},
        {"days": {"2026-11-30": [1, -2]}},
        {"days": [[1, 2]]},
        {"days": {}, "older": "lots"},
        "ledger",
    ],
)
def test_a_stored_ledger_that_is_not_one_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="not a stored usage ledger"):
        UsageLedger.from_dict(bad)  # type: ignore[arg-type]


def test_old_counters_become_the_older_total() -> None:
    # What the store kept before days were: {"input": 15, "output": 4} per mate.
    ledger = UsageLedger.from_total(Usage(15, 4))
    assert ledger.total() == Usage(15, 4) and ledger.today(NOON) == Usage()


def test_ledgers_add_day_by_day() -> None:
    a, b = UsageLedger(), UsageLedger()
    a.add(Usage(1, 1), NOON)
    b.add(Usage(2, 2), NOON)
    b.add(Usage(4, 4), NOON - timedelta(days=3))
    both = a + b
    assert both.today(NOON) == Usage(3, 3) and both.total() == Usage(7, 7)


# ---------------------------------------------------------------- fill_usage


def test_fill_usage_keeps_a_full_report() -> None:
    assert fill_usage(Usage(10, 5, 8), 99, lambda: 77) == Usage(10, 5, 8)


def test_fill_usage_estimates_what_is_missing_and_says_so() -> None:
    assert fill_usage(None, 99, lambda: 77) == Usage(99, 77, estimated=True)
    assert fill_usage(Usage(10, 0), 99, lambda: 77) == Usage(10, 77, estimated=True)
    assert fill_usage(Usage(0, 5), 99, lambda: 77) == Usage(99, 5, estimated=True)
    assert fill_usage(None, 99, lambda: 0) == Usage(99, 0, estimated=True)  # no text


def test_fill_usage_of_a_stopped_reply_keeps_the_known_input() -> None:
    known = Usage(3240, 1, 3000, 200)  # Anthropic's message_start
    assert fill_usage(known, 99, lambda: 40, stopped=True) == Usage(
        3240, 40, 3000, 200, estimated=True
    )


# ---------------------------------------------------------------- per model: MateUsage


def test_a_mates_usage_is_kept_per_model_and_priced_per_model() -> None:
    book = MateUsage()
    book.add("gpt-5-mini", Usage(2_000_000, 100_000, 1_000_000), NOON)
    book.add("gpt-4.1", Usage(1_000_000, 0), NOON - timedelta(days=40))
    summary = book.summary(NOON)
    assert summary.today == Usage(2_000_000, 100_000, 1_000_000)
    assert summary.last_30_days == summary.today
    assert summary.total == Usage(3_000_000, 100_000, 1_000_000)
    mini = 1.0 * 0.25 + 1.0 * 0.025 + 0.1 * 2.0  # fresh, cached, output at gpt-5-mini's
    assert summary.cost_today == pytest.approx(mini)
    assert summary.cost_30_days == pytest.approx(mini)
    assert summary.cost_total == pytest.approx(mini + 1.0 * 2.0)  # gpt-4.1 at its own price


def test_each_request_of_a_tiered_model_is_priced_at_its_own_tier() -> None:
    # Claude Haiku 5.5: $0.10 / $0.50 for prompts up to 100,000 tokens, $0.50 / $2.50 over.
    book = MateUsage()
    book.add("claude-haiku-5-5", Usage(50_000, 1_000), NOON)
    book.add("claude-haiku-5-5", Usage(150_000, 1_000), NOON)
    book.add("claude-haiku-5-5", Usage(60_000, 1_000, cached_input_tokens=40_000), NOON)
    summary = book.summary(NOON)
    assert summary.today == Usage(260_000, 3_000, cached_input_tokens=40_000)
    short = (0.05 * 0.10 + 0.001 * 0.50) + (0.02 * 0.10 + 0.04 * 0.01 + 0.001 * 0.50)
    long = 0.15 * 0.50 + 0.001 * 2.50
    assert summary.cost_today == pytest.approx(short + long)
    assert MateUsage.from_dict(json.loads(json.dumps(book.to_dict()))) == book


def test_a_period_with_an_unknown_model_has_an_unknown_cost() -> None:
    book = MateUsage()
    book.add("gpt-5-mini", Usage(1000, 10), NOON)
    book.add("llama3.1:8b", Usage(1000, 10), NOON - timedelta(days=3))
    summary = book.summary(NOON)
    assert summary.cost_today is not None
    assert summary.cost_30_days is None and summary.cost_total is None
    priced = book.summary(NOON, {"llama3.1:8b": Prices(0, 0, 0, 0)})
    assert priced.cost_total == priced.cost_today


def test_models_beyond_the_bound_fold_into_an_unpriced_rest() -> None:
    models = ["gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
              "gpt-4o", "gpt-4o-mini", "o3", "o4-mini"]  # fmt: skip
    assert len(models) == MAX_MODELS + 2
    book = MateUsage()
    for model in models[:MAX_MODELS]:
        book.add(model, Usage(10, 1), NOON)
    assert book.summary(NOON).cost_total is not None  # every one priced
    for model in models[MAX_MODELS:]:
        book.add(model, Usage(10, 1), NOON)
    assert list(book.ledgers) == ["", *models[2:]]  # the two least recent, folded
    assert book.summary(NOON).total == Usage(10 * len(models), len(models))
    assert book.summary(NOON).cost_total is None  # never a wrong number


def test_a_mates_usage_round_trips_as_json() -> None:
    book = MateUsage()
    book.add("gpt-5-mini", Usage(1200, 300, 1024), NOON)
    book.add("claude-sonnet-4-5", Usage(800, 100, 0, 200), NOON - timedelta(days=1))
    stored = json.loads(json.dumps(book.to_dict()))
    assert MateUsage.from_dict(stored) == book
    with pytest.raises(ValueError, match="not a stored usage"):
        MateUsage.from_dict({"gpt-5": {"days": {"x": [1]}}})
