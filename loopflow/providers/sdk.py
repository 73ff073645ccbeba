"""What the two SDK adapters share: the client's lifecycle, the HTTP pool's limits, the
error mapping, and :meth:`SDKProvider.execute`: the request from its post to the
reply's chunks, counted in flight, parameters a model refuses, and reasoning text cut
from the reply.

The ``openai`` and ``anthropic`` SDKs are generated from one template and raise the
same families of exceptions (``APITimeoutError``, ``APIConnectionError``,
``APIError``), so one mapping serves both; each adapter only says how its provider's
HTTP errors read (``status_error``), how a request looks on its wire (``_body``), how
to post it (``_post``) and how to read a response (``_one``) or a stream's events
(``_reader``, an :class:`EventReader`).
"""

from __future__ import annotations

import abc
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any, ClassVar, Generic, Optional, TypeVar

import httpx

from loopflow import models
from loopflow.errors import (
    ProviderError,
    ProviderTimeoutError,
    RequestError,
    UnavailableError,
    UnsupportedParameterError,
    scrub,
)
from loopflow.providers.aiohttp_transport import AiohttpTransport
from loopflow.providers.base import Chunk, InFlight, Provider, Request
from loopflow.providers.parameters import (
    RefusedParameters,
    is_refusal,
    named_parameter,
    suggested_replacement,
)
from loopflow.providers.reasoning import ThinkFilter
from loopflow.providers.wire_json import DEFAULT_ENCODED_BYTES, BodyEncoder, takes_content

Client = TypeVar("Client")

#: The SDK clients' connections: many at once (a burst of conversations), each kept 15 s
#: idle for the next request (aiohttp's default, as for Red's other HTTP clients). At most
#: 20 are kept idle when httpx's own transport is used (with a proxy): httpcore's pool
#: slows down badly with many (encode/httpcore#1035); aiohttp's does not and keeps all.
POOL_LIMITS = httpx.Limits(
    max_connections=1000, max_keepalive_connections=20, keepalive_expiry=15.0
)


def http_client(sdk: ModuleType) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` for an SDK client (``sdk``: the ``openai`` or
    ``anthropic`` module), with the SDK's own defaults (timeout, redirects) and
    :data:`POOL_LIMITS`: requests go through :class:`AiohttpTransport`, unless the
    environment names a proxy (``HTTPS_PROXY``, ``ALL_PROXY`` and the like, as
    ``urllib.request.getproxies`` reads them): then through httpx's own transport, which
    honours it (httpx reads the environment's proxies only for its own transport)."""
    if _environment_proxies():
        client: httpx.AsyncClient = sdk.DefaultAsyncHttpxClient(limits=POOL_LIMITS)
    else:
        client = sdk.DefaultAsyncHttpxClient(transport=AiohttpTransport(limits=POOL_LIMITS))
    return client


def _environment_proxies() -> bool:
    """Whether the environment sets a proxy for HTTP(S) requests."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def mapped_error(
    exc: Exception,
    sdk: ModuleType,
    title: str,
    name: str,
    status_error: Callable[[Any], ProviderError],
) -> Optional[ProviderError]:
    """The loopflow error for an SDK, transport or parsing failure (None: ``exc`` is
    none of those, or a loopflow error already, and goes on as it is).

    :meth:`SDKProvider.execute` maps what the request and the iteration of its stream
    raise: the SDKs do not wrap transport errors that happen midway through a stream,
    hence the httpx clauses.
    """
    if isinstance(exc, ProviderError):
        return None
    if isinstance(exc, (sdk.APITimeoutError, httpx.TimeoutException)):
        return ProviderTimeoutError(f"{title} did not answer in time.", name)
    if isinstance(exc, (sdk.APIConnectionError, httpx.HTTPError)):
        return UnavailableError(f"{title} could not be reached.", name)
    if isinstance(exc, sdk.APIError):
        return status_error(exc)
    if isinstance(exc, (ValueError, KeyError, AttributeError, TypeError, IndexError)):
        # JSON that does not parse, or events without the fields every event has.
        return UnavailableError(f"{title} sent a response loopflow could not read.", name)
    return None


def request_error(
    title: str, name: str, status: Optional[int], message: str, param: str = ""
) -> RequestError:
    """The error for a request the provider refused (4xx): a parameter refusal
    (:class:`UnsupportedParameterError`, for :meth:`SDKProvider.execute` to retry) when
    the words say so, else a :class:`RequestError` carrying the scrubbed reason."""
    reason = scrub(message)
    text = f"{title} rejected the request: {reason}"
    if status in (400, 422) and (param or is_refusal(message)):
        return UnsupportedParameterError(
            text, name, reason, parameter=param, replacement=suggested_replacement(message)
        )
    return RequestError(text, name, reason)


class EventReader(abc.ABC):
    """Reads one streamed response's events (their JSON) into chunks."""

    __slots__ = ()

    @abc.abstractmethod
    def feed(self, event: Any) -> Optional[Chunk]:
        """The chunk ``event`` brings to pass on (text, or usage a caller that stops now
        must count), None for none; raises a :class:`ProviderError` for an event that
        ends the reply (a refusal)."""

    @abc.abstractmethod
    def end(self) -> Chunk:
        """The last chunk, after the last event: usage and finish reason; raises
        :class:`UnavailableError` for a stream cut off before it began."""


class SDKProvider(Provider, Generic[Client]):
    """An adapter over one official SDK's async client.

    ``api_key`` and ``base_url`` default to the SDK's own environment variables. The
    client is built once, on the first request (so a missing key is reported by
    ``execute`` as :class:`~loopflow.errors.MissingKeyError`, not at construction), or
    injected as ``client``. Retries with backoff are the SDK's (``max_retries``).
    ``encoded_bytes`` bounds the memory of messages' encoded JSON
    (:class:`~loopflow.providers.wire_json.BodyEncoder`).

    :meth:`execute` sends each model what the model table says it accepts, retries a
    request once per parameter the model refuses (remembered for the model, bounded),
    and cuts reasoning text from the reply (:mod:`loopflow.providers.reasoning`).
    """

    #: Parameters never left out on a refusal: without them there is no request.
    required: ClassVar[frozenset[str]] = frozenset({"model", "messages", "stream", "system"})

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        client: Optional[Client] = None,
        encoded_bytes: int = DEFAULT_ENCODED_BYTES,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._client = client
        self._owns_client = client is None
        self._closed = False
        self._refused = RefusedParameters()
        self._encoder = BodyEncoder(encoded_bytes)
        self._content_client: tuple[Optional[Client], bool] = (None, False)
        self.in_flight: InFlight = InFlight()

    @abc.abstractmethod
    def _build_client(self) -> Client:
        """A new SDK client; raises ``MissingKeyError`` when no key is configured."""

    def _get_client(self) -> Client:
        if self._client is None:
            if self._closed:
                # A request on a replaced client after its grace (a retry that began before
                # the key changed): a client built now would never be closed.
                title = models.provider_spec(self.name).title
                raise UnavailableError(f"This {title} client was closed.", self.name)
            self._client = self._build_client()
        return self._client

    def _payload(self, client: Client, body: dict[str, Any]) -> dict[str, Any]:
        """The SDK's ``post`` keyword for ``body``: its JSON bytes as ``content``, each
        message encoded once (:class:`~loopflow.providers.wire_json.BodyEncoder`), where
        the SDK takes them; else ``body`` for the SDK to encode (surrogates as the bytes
        would carry them: :meth:`~loopflow.providers.wire_json.BodyEncoder.sendable`)."""
        known, takes = self._content_client
        if known is not client:
            takes = takes_content(client)
            self._content_client = (client, takes)
        if takes:
            return {"content": self._encoder.encode(body)}
        return {"body": self._encoder.sendable(body)}

    @abc.abstractmethod
    def _body(self, client: Client, request: Request, stream: bool) -> dict[str, Any]:
        """The request's parameters on this provider's wire, as the model table says
        ``request.model`` accepts them."""

    @abc.abstractmethod
    def _post(self, client: Client, body: dict[str, Any], stream: bool) -> Awaitable[Any]:
        """The SDK client's ``post`` of ``body``: the response's model, or with ``stream``
        the SDK's stream of events (each event's JSON)."""

    @abc.abstractmethod
    def _one(self, response: Any) -> Chunk:
        """The chunk of a response not streamed: its text, usage and finish reason."""

    @abc.abstractmethod
    def _reader(self) -> EventReader:
        """A new reader of one streamed response's events."""

    @abc.abstractmethod
    def _mapped(self, exc: Exception) -> Optional[ProviderError]:
        """:func:`mapped_error` for this provider's SDK."""

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """Send ``request``; yield the reply's visible text deltas, then a usage chunk.

        A parameter the model refuses is left out (or renamed, as the provider says) and
        the request sent again, once per parameter, before anything was yielded. The
        request counts in :attr:`in_flight` until this generator ends, however it ends.
        SDK, transport and parsing failures are raised as :mod:`loopflow.errors`
        (:func:`mapped_error`; a refused parameter as :class:`UnsupportedParameterError`).

        One generator from the request to the reply's chunks (the adapters only say how
        to post, and how to read a response or an event): each generator is held by
        every request in flight, which a burst's garbage collections walk.
        """
        self.in_flight.start()
        try:
            client = self._get_client()
            body = self._body(client, request, stream)
            unopened = models.starts_thinking(self.name, request.model)
            tried: set[str] = set()
            while True:
                sent = self._refused.apply(request.model, body)
                yielded = False
                think = ThinkFilter(unopened)  # reasoning text cut as the chunks pass
                try:
                    try:
                        if stream:
                            events = await self._post(client, sent, True)
                            reader = self._reader()
                            try:
                                async for event in events:
                                    chunk = reader.feed(event)
                                    if chunk is None:
                                        continue
                                    shown = think.visible(chunk)
                                    if shown is not None:
                                        yielded = True
                                        yield shown
                                last = reader.end()
                            finally:
                                await events.close()  # also when the reader stops early
                        else:
                            last = self._one(await self._post(client, sent, False))
                    except Exception as exc:
                        mapped = self._mapped(exc)
                        if mapped is None:
                            raise
                        raise mapped from exc
                    shown = think.visible(last)
                    if shown is not None:
                        yield shown
                    rest = think.rest()
                    if rest is not None:
                        yield rest
                    return
                except UnsupportedParameterError as exc:
                    parameter = self._refused_parameter(exc, sent)
                    if yielded or not parameter or parameter in tried:
                        raise
                    tried.add(parameter)
                    replacement = self._replacement(exc, parameter)
                    self._refused.remember(request.model, parameter, replacement)
        finally:
            self.in_flight.end()

    def _refused_parameter(self, exc: UnsupportedParameterError, sent: dict[str, Any]) -> str:
        """The parameter of ``sent`` the refusal names ("" if none that may go)."""
        optional = [name for name in sent if name not in self.required]
        if exc.parameter in optional:
            return exc.parameter
        return named_parameter(exc.reason, optional)

    def _replacement(self, exc: UnsupportedParameterError, parameter: str) -> str:
        """The name to send a refused output-token cap as: the one the provider names,
        else the other name of the pair; other parameters are left out ("")."""
        names = models.provider_spec(self.name).token_limits
        if parameter not in names:
            return ""
        if exc.replacement in names and exc.replacement != parameter:
            return exc.replacement
        return next((name for name in names if name != parameter), "")

    async def aclose(self) -> None:
        """Close the SDK client if this provider built it; later requests raise
        :class:`~loopflow.errors.UnavailableError` instead of building another."""
        self._closed = True
        if self._client is not None and self._owns_client:
            # Let go of it first: a request while it closes is refused at once, not
            # retried on a closed HTTP client with backoff.
            client, self._client = self._client, None
            await client.close()  # type: ignore[attr-defined]
