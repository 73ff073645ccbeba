"""OpenAI's streamed replies, with their connection given back to the client's pool.

The ``openai`` SDK's ``AsyncStream`` stops reading at ``data: [DONE]`` and closes the
response; the chunked body's last bytes are still unread then, so httpcore cannot reuse
the connection and drops it, and the next reply opens a new one: a TCP and a TLS
handshake per reply (described in openai/openai-python pull request #3580, "Fix/drain
stream after done", not merged; measured in BENCHMARKS.md, ~6 % of Red's CPU in the
turn-overhead scenario). :class:`PooledStream` reads what follows ``[DONE]``
(normally nothing but the body's end) before the SDK closes the response, so the
connection goes back to the pool. It reads at most :data:`DRAIN_BYTES` for at most
:data:`DRAIN_SECONDS`: a server that sends more, or keeps the body open, has its
connection closed as before, and the reply is not held up.

It overrides the SDK's ``AsyncStream._iter_events`` (the one hook between the bytes
and the events); on an SDK without it or its decoder it is the SDK's stream unchanged.
Its events are the chunks' JSON, not the SDK's models (one per token or so);
:class:`JSONFields` lets code written for the models read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

DRAIN_BYTES = 64 * 1024
"""The most read after ``[DONE]`` to free the connection (the body's end is 5 bytes)."""

DRAIN_SECONDS = 0.25
"""The longest wait for the body's end after ``[DONE]``."""


class PooledStream(openai.AsyncStream[object]):
    """``openai.AsyncStream`` that reads the response to its end after ``[DONE]``.

    Its events are the chunks' JSON as parsed (``object``: the SDK builds no model of
    them), which the adapter reads as dicts.
    """

    async def _iter_events(self) -> AsyncIterator[Any]:
        decoder = getattr(self, "_decoder", None)
        if decoder is None:  # an SDK whose stream has no decoder of its own
            async for sse in super()._iter_events():
                yield sse
            return
        chunks = self.response.aiter_bytes()
        async for sse in decoder.aiter_bytes(chunks):
            if sse.data.startswith("[DONE]"):
                await _drain(chunks)
            yield sse


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read ``chunks`` to their end, within :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS`."""

    async def read() -> None:
        read = 0
        async for chunk in chunks:
            read += len(chunk)
            if read > DRAIN_BYTES:
                return

    try:
        await asyncio.wait_for(read(), DRAIN_SECONDS)
    except (asyncio.TimeoutError, httpx.HTTPError):
        # The reply is complete at [DONE]: what follows can only cost the connection,
        # which the SDK closes with the response, as it always did.
        return


class JSONFields:
    """A JSON object's fields as attributes (None when missing; nested objects wrapped
    too), so what reads the SDK's models (``openai_usage``) reads a chunk's JSON alike."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return JSONFields(value) if isinstance(value, dict) else value
