"""Provider clients: a replaced client closes only after its requests in flight end."""

from __future__ import annotations

import asyncio

from chat_fakes import HeldAdapter

from loopflow.providers.base import Request
from loopflow_cog.clients import Client

REQUEST = Request(model="m", system="", messages=())


async def test_a_replaced_client_closes_after_its_stream_ends() -> None:
    adapter = HeldAdapter()
    client = Client(adapter)
    chunks = client.execute(REQUEST, stream=True)
    assert (await chunks.__anext__()).text == "Hello "
    closing = asyncio.create_task(client.aclose())  # the owner set a new key
    await asyncio.sleep(0)
    assert not closing.done() and not adapter.closed and client.in_flight.count == 1
    adapter.release.set()
    rest = [chunk.text async for chunk in chunks]
    assert rest == ["world", ""]  # the reply in flight completed in full
    await asyncio.wait_for(closing, 1)
    assert adapter.closed and client.in_flight.count == 0


async def test_a_stream_abandoned_midway_still_ends_its_count() -> None:
    adapter = HeldAdapter()
    client = Client(adapter)
    chunks = client.execute(REQUEST, stream=True)
    await chunks.__anext__()
    await chunks.aclose()  # type: ignore[attr-defined]  # the reader stopped (a stop button)
    assert client.in_flight.count == 0
    await asyncio.wait_for(client.aclose(), 1)
    assert adapter.closed


async def test_an_idle_client_closes_at_once_and_a_stuck_one_after_its_grace() -> None:
    idle = HeldAdapter()
    await asyncio.wait_for(Client(idle).aclose(), 1)
    assert idle.closed
    stuck = HeldAdapter()
    client = Client(stuck)
    chunks = client.execute(REQUEST, stream=True)
    await chunks.__anext__()
    await asyncio.wait_for(client.aclose(grace=0.05), 1)
    assert stuck.closed
    await chunks.aclose()  # type: ignore[attr-defined]


class SlowClosing(HeldAdapter):
    """An adapter whose close takes until the test lets it finish (an HTTP client closing
    its connections); a close cut midway leaves them open, and a second one does not
    reopen what the first began (httpx marks a client closed as its close begins)."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = asyncio.Event()
        self.may_finish = asyncio.Event()
        self.closes_begun = 0

    async def aclose(self) -> None:
        self.closes_begun += 1
        self.closing.set()
        await self.may_finish.wait()
        self.closed = True


async def test_an_unload_that_cuts_a_retirement_short_lets_its_close_finish() -> None:
    adapter = SlowClosing()
    client = Client(adapter)
    retiring = asyncio.create_task(client.aclose())  # the owner set a new key
    await adapter.closing.wait()
    retiring.cancel()  # the cog unloads: it cuts the retirement's wait short
    await asyncio.gather(retiring, return_exceptions=True)
    unloading = asyncio.create_task(client.aclose(grace=1))  # and closes every client
    await asyncio.sleep(0.01)
    assert not unloading.done()  # it waits for the close under way
    adapter.may_finish.set()
    await asyncio.wait_for(unloading, 1)
    assert adapter.closed and adapter.closes_begun == 1  # closed once, in full
