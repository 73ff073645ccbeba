"""InFlight: the count of a provider's requests in flight, and the wait until none is."""

from __future__ import annotations

import asyncio

from loopflow.providers.base import InFlight


async def test_idle_returns_at_once_when_nothing_is_in_flight():
    await asyncio.wait_for(InFlight().idle(), 1)


async def test_idle_waits_for_a_request_begun_before_it_woke():
    # A reply's retry starts right as its first attempt ends: the wait (a client being
    # closed after a key change) must not take the moment of zero for the end.
    in_flight = InFlight()
    in_flight.start()
    waiting = asyncio.ensure_future(in_flight.idle())
    await asyncio.sleep(0)  # the wait is waiting
    in_flight.end()
    in_flight.start()  # the retry, before the wait wakes
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done
    in_flight.end()
    await asyncio.wait_for(waiting, 1)
    assert in_flight.count == 0
