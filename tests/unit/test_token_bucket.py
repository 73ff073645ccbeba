"""TokenBucket: a burst is allowed at once, then calls at the rate; the rest skipped."""

from __future__ import annotations

import pytest

from loopflow.chat.token_bucket import TokenBucket


def test_a_burst_goes_at_once_then_the_rest_is_skipped() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert [bucket.take(100.0) for _ in range(8)] == [True] * 5 + [False] * 3


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    while bucket.take(100.0):
        pass
    assert [bucket.take(100.25) for _ in range(3)] == [True, True, False]  # 2.5 tokens
    # A quiet minute refills only up to the burst.
    assert sum(bucket.take(160.25) for _ in range(20)) == 5


def test_over_time_calls_average_the_rate() -> None:
    bucket = TokenBucket(rate=20, burst=20)
    # 100 calls asked for per second, for 100 seconds.
    taken = sum(bucket.take(100 + i / 100) for i in range(10_000))
    assert 2000 <= taken <= 2020


def test_calls_that_keep_tokens_give_way_to_the_others() -> None:
    bucket = TokenBucket(rate=10, burst=4)
    assert bucket.take(100.0, keep=2)  # 4 tokens: one may go and leave 3
    assert bucket.take(100.0, keep=2)  # 3: one may go and leave 2
    assert not bucket.take(100.0, keep=2)  # 2 left: kept for the others
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]


def test_a_clock_that_goes_back_gives_no_tokens() -> None:
    bucket = TokenBucket(rate=10, burst=1)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(50.05)  # half a token since 50.0: still none


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (10, 0)])
def test_a_bucket_that_could_never_give_a_token_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst)
