"""The SDK adapters count their own requests in flight (no generator of the cog's client
around each one): a client replaced by a token change is closed only once the replies
it serves are done, and every request ends its count however it ends (read to its end,
failed, its reader stopped or cancelled), at once."""

from __future__ import annotations

import asyncio
from typing import Any

import fake_llm
import pytest
from adapter_wires import Wire, collect
from fake_llm import FakeLLMServer, wait_until

from loopflow import errors
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate
from loopflow.providers.sdk import SDKProvider
from loopflow_cog.clients import Client

HELLO = [Turn(speaker_id=1, display_name="Alice", text="hello")]


def maya_on(wire: Wire, client: Client, **options: Any) -> tuple[Mate, Session]:
    """Maya on ``wire``'s provider and model (``options``: more of her settings), and a
    session whose only provider is ``client``."""
    mate = Mate(
        name="maya",
        display_name="Maya",
        system_prompt="You are Maya.",
        provider=wire.name,
        model=wire.model,
        **options,
    )
    return mate, Session({wire.name: client})


@pytest.fixture
async def adapter(wire: Wire, llm_server: FakeLLMServer) -> Any:
    """``wire``'s adapter, patient enough for a reply held at a gate."""
    built: SDKProvider[Any] = wire.build(llm_server, timeout=10, max_retries=0)
    yield built
    await built.aclose()


async def test_a_replaced_client_waits_for_the_reply_it_is_streaming(wire, adapter, llm_server):
    client = Client(adapter)
    llm_server.enqueue(fake_llm.reply("one two three", gate="answer"))
    chunks = client.execute(wire.request(), stream=True)
    first = asyncio.ensure_future(chunks.__anext__())
    await wait_until(lambda: llm_server.requests, what="the request at the fake LLM")
    assert client.in_flight.count == 1
    closing = asyncio.create_task(client.aclose())  # the owner set a new key
    done, _ = await asyncio.wait({closing}, timeout=0.3)
    assert not done  # the reply in flight holds the old client open
    llm_server.release("answer")
    texts = [(await first).text] + [chunk.text async for chunk in chunks]
    assert "".join(texts) == "one two three"  # the reply completed in full
    await asyncio.wait_for(closing, 5)
    assert client.in_flight.count == 0
    assert [r.outcome for r in llm_server.requests] == ["complete"]


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_a_stream_stopped_early_ends_its_count_at_once(wire, adapter, llm_server, how):
    client = Client(adapter)
    llm_server.enqueue(fake_llm.hang(after_text="one "))
    chunks = client.execute(wire.request(), stream=True)
    assert (await chunks.__anext__()).text == "one "
    assert client.in_flight.count == 1
    if how == "aclose":
        await chunks.aclose()  # type: ignore[attr-defined]
    else:
        reading = asyncio.ensure_future(chunks.__anext__())  # stalled: the LLM is silent
        await wait_until(lambda: not reading.done() and client.in_flight.count == 1)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    assert client.in_flight.count == 0
    await asyncio.wait_for(client.aclose(grace=5), 1)  # idle: closes at once


@pytest.mark.parametrize("stream", [False, True])
async def test_a_failed_request_ends_its_count(wire, adapter, llm_server, stream):
    client = Client(adapter)
    llm_server.enqueue(fake_llm.error(500))
    with pytest.raises(errors.UnavailableError):
        async for _ in client.execute(wire.request(), stream=stream):
            pass
    assert client.in_flight.count == 0


async def test_a_reply_stopped_midway_ends_its_request_and_keeps_its_usage(
    wire, adapter, llm_server
):
    # The reader of a mate's reply stops it (the stop button closes the reply's
    # iterator): the request it was streaming ends now, not when the collector finds it.
    client = Client(adapter)
    mate, session = maya_on(wire, client)
    llm_server.enqueue(fake_llm.hang(after_text="Hello there, how are you today?\n"))
    stream = session.stream(mate, HELLO)
    deltas = stream.__aiter__()
    assert (await deltas.__anext__()).startswith("Hello there")
    assert client.in_flight.count == 2  # the request, and the reply around its attempts
    await deltas.aclose()  # type: ignore[attr-defined]
    assert client.in_flight.count == 0
    assert stream.reply is not None and stream.reply.usage.output_tokens > 0
    await wait_until(
        lambda: llm_server.requests[0].outcome == "disconnected",
        timeout=5,
        what="the fake LLM to see the stream closed",
    )


@pytest.mark.parametrize("first", ["context_too_long", "empty"])
async def test_a_replaced_client_waits_for_the_retry_of_the_reply_it_serves(
    wire, adapter, llm_server, first
):
    # The owner sets a new key while a reply waits for its first attempt; that attempt
    # ends (the context was too long, or the completion empty) and the reply asks again:
    # the old client stays open for the retry, and closes once the reply is done.
    client = Client(adapter)
    mate, session = maya_on(wire, client)
    if first == "context_too_long":
        llm_server.enqueue(fake_llm.context_too_long(gate="first"))
    else:
        llm_server.enqueue(fake_llm.reply("", gate="first"))
    llm_server.enqueue(fake_llm.reply("Hello there, on the second try.", gate="second"))
    stream = session.stream(mate, HELLO)

    async def read() -> str:
        return "".join([delta async for delta in stream])

    reading = asyncio.create_task(read())
    await wait_until(lambda: llm_server.requests, what="the first request at the fake LLM")
    closing = asyncio.create_task(client.aclose())  # the owner set a new key
    llm_server.release("first")
    await wait_until(lambda: len(llm_server.requests) == 2, what="the retry at the fake LLM")
    done, _ = await asyncio.wait({closing}, timeout=0.3)
    assert not done  # the reply's retry holds the old client open
    llm_server.release("second")
    assert await asyncio.wait_for(reading, 5) == "Hello there, on the second try."
    await asyncio.wait_for(closing, 5)
    assert client.in_flight.count == 0
    assert adapter._client is None  # closed, and no client built again for the retry


_STREAM_STALLS = fake_llm.hang(after_text="Hello there, how are you today?\n")
_STOPPED_AT = {
    # where the reply is when it is stopped: what the fake LLM answers, in order (the
    # request stopped is the last)
    "before the post returns": [fake_llm.hang()],
    "between two events": [_STREAM_STALLS],
    "in the retry of an empty completion": [fake_llm.reply(""), _STREAM_STALLS],
    "in the retry with half the tokens": [fake_llm.context_too_long(), _STREAM_STALLS],
    "in the retry without a refused parameter": [
        fake_llm.error(400, "Unsupported parameter: 'temperature'", param="temperature"),
        _STREAM_STALLS,
    ],
}


@pytest.mark.parametrize("point", list(_STOPPED_AT))
async def test_a_reply_stopped_anywhere_ends_its_requests_and_keeps_its_usage(
    wire, adapter, llm_server, point
):
    # The stop button (or a deleted message, an unload) cancels the task reading the
    # reply, wherever its attempts are: every count ends, the usage of what was sent
    # stays (the empty completion's too), and the connection streaming it is closed.
    client = Client(adapter)
    mate, session = maya_on(wire, client, temperature=0.5)
    answers = _STOPPED_AT[point]
    for behaviour in answers:
        llm_server.enqueue(behaviour)
    stream = session.stream(mate, HELLO)
    shown: list[str] = []

    async def read() -> None:
        async for delta in stream:
            shown.append(delta)

    reading = asyncio.create_task(read())
    await wait_until(lambda: len(llm_server.requests) == len(answers), what="the requests")
    if point != "before the post returns":
        await wait_until(lambda: shown, what="the reply's first words")
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert client.in_flight.count == 0
    assert stream.reply is not None and stream.reply.usage.input_tokens > 0
    if point == "in the retry of an empty completion":  # both requests' input
        assert stream.reply.usage.input_tokens > _billed_input(llm_server.requests[0].json)
    if point != "before the post returns":  # the fake sees a stream closed, not a wait
        await wait_until(
            lambda: llm_server.requests[-1].outcome == "disconnected",
            timeout=5,
            what="the fake LLM to see the stream closed",
        )
    await asyncio.wait_for(client.aclose(grace=5), 1)  # idle: closes at once


def _billed_input(body: Any) -> int:
    """The input tokens the fake LLM bills for a request (a quarter of its characters)."""
    texts = [body.get("system", ""), *(message["content"] for message in body["messages"])]
    return max(1, sum(len(fake_llm._text_of(text)) for text in texts) // 4)


async def test_a_closed_client_asks_no_more(wire, adapter, llm_server):
    client = Client(adapter)
    llm_server.enqueue(fake_llm.reply("before the new key"))
    assert "".join([chunk.text async for chunk in client.execute(wire.request())])
    await client.aclose(grace=1)  # replaced by a token change, its grace over
    with pytest.raises(errors.UnavailableError, match="client was closed"):
        async for _chunk in client.execute(wire.request(), stream=True):
            pass
    assert len(llm_server.requests) == 1  # no SDK client was built again to send it
    assert client.in_flight.count == 0


async def test_a_request_while_the_client_closes_is_refused_at_once(wire, llm_server, monkeypatch):
    # The SDK client being closed (its HTTP client shut, its connections closing) is not
    # handed out: the SDK would retry a request on it with backoff, then fail it as
    # "could not be reached".
    closed_adapter = wire.build(llm_server, timeout=10, max_retries=2)
    transport = closed_adapter._get_client()._client._transport
    entered, release = asyncio.Event(), asyncio.Event()
    close = transport.aclose

    async def held_close() -> None:
        entered.set()
        await release.wait()
        await close()

    monkeypatch.setattr(transport, "aclose", held_close)
    closing = asyncio.create_task(closed_adapter.aclose())  # retired: a new key, grace over
    await entered.wait()
    try:
        with pytest.raises(errors.UnavailableError, match="client was closed"):
            await collect(closed_adapter, wire.request(), stream=False)
    finally:
        release.set()
        await closing
    assert not llm_server.requests
    assert closed_adapter.in_flight.count == 0
