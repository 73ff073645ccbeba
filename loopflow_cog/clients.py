"""Provider adapters built from Red's shared API tokens or the SDKs' environment.

``[p]set api openai api_key,<key>`` (and ``base_url,<url>`` for compatible servers)
wins over ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``; the same for ``anthropic``.
Adapters are built once and rebuilt only when the owner changes the tokens. Each is
wrapped in a :class:`Client` that counts its requests in flight, so an adapter
replaced by a token change is closed only once the replies it is streaming are done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

from redbot.core.bot import Red

from loopflow.chat.history import cache_bytes_from_environment
from loopflow.providers import PROVIDER_NAMES, Provider, make_provider
from loopflow.providers.base import Chunk, InFlight, Request

log = logging.getLogger("red.loopflow.clients")

# The longest a replaced client waits for its requests to end before it is closed
# anyway: a long reply streams for a few minutes at most.
RETIRE_GRACE = 600.0
# Of LOOPFLOW_CACHE_MB, what each adapter keeps of its requests' encoded messages: 8 MiB
# of the default 256, the windows of about forty busy conversations of 16,000 tokens
# (messages of 200 characters: 626 bytes each, their JSON and their text).
ENCODED_SHARE = 32


class Client(Provider):
    """A provider adapter that knows how many of its requests are in flight.

    Requests go to ``adapter``; :meth:`aclose` waits until none is in flight (at most
    ``grace`` seconds), then closes the adapter. Any request ends its count, however it
    ends (finished, failed, or its reader stopped early). An adapter that counts its own
    requests (:attr:`Provider.in_flight`, the SDK adapters) is called as it is: one
    generator fewer per request in flight than counting around it (what a burst's
    garbage collections walk: ``bench/objects_in_flight.py``).
    """

    name = "client"  # requests name their provider through the adapter's own errors
    in_flight: InFlight

    def __init__(self, adapter: Provider) -> None:
        self.adapter = adapter
        self._counts_itself = adapter.in_flight is not None
        self.in_flight = adapter.in_flight if adapter.in_flight is not None else InFlight()
        self._closing: asyncio.Future[None] | None = None

    def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """The adapter's :meth:`~Provider.execute`, counted while it runs."""
        if self._counts_itself:
            return self.adapter.execute(request, stream=stream)
        return self._counted(request, stream)

    async def _counted(self, request: Request, stream: bool) -> AsyncIterator[Chunk]:
        self.in_flight.start()
        chunks = self.adapter.execute(request, stream=stream)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            try:
                close = getattr(chunks, "aclose", None)  # an adapter is an async generator
                if close is not None:
                    await close()  # its stream closes now, not when it is collected
            finally:
                self.in_flight.end()

    async def aclose(self, grace: float = RETIRE_GRACE) -> None:
        """Close the adapter once no request is in flight, or after ``grace`` seconds.

        Cancelling this cuts the wait, never the close once begun: an unload that cuts a
        retirement short closes the client again, and that call waits for the close
        under way (an HTTP client cut midway through its close stays half open, and
        httpx never closes a client twice)."""
        try:
            await asyncio.wait_for(self.in_flight.idle(), grace)
        except asyncio.TimeoutError:
            log.warning("Closing a %s client with requests still in flight", self.adapter.name)
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.adapter.aclose())
        await asyncio.shield(self._closing)


def provider_from_tokens(name: str, tokens: Mapping[str, str]) -> Client:
    """The adapter for ``name``, from Red's shared tokens where set, else the environment;
    it keeps a thirty-second of ``LOOPFLOW_CACHE_MB`` of encoded messages."""
    return Client(
        make_provider(
            name,
            api_key=(tokens.get("api_key") or "").strip() or None,
            base_url=(tokens.get("base_url") or "").strip() or None,
            encoded_bytes=cache_bytes_from_environment() // ENCODED_SHARE,
        )
    )


async def build_providers(bot: Red) -> dict[str, Client]:
    """One adapter per provider (an adapter without any key reports it when used)."""
    return {
        name: provider_from_tokens(name, await bot.get_shared_api_tokens(name))
        for name in PROVIDER_NAMES
    }
