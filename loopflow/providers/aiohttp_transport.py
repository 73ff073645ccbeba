"""An httpx transport on aiohttp, for the SDK clients' requests.

The ``openai`` and ``anthropic`` SDKs send through an ``httpx.AsyncClient``, whose default
transport is httpcore on anyio: per request, a pool scan (encode/httpcore#1035), a cancel
scope, an event and a ``fail_after`` per socket operation, h11's state machine, and the
headers and the body written in separate sends. Profiled in Red (BENCHMARKS.md, "Less CPU
per turn"), that was about a fifth of Red's CPU in a burst of turns, more than the whole
of one aiohttp request, which Red and discord.py already use for everything else.
:class:`AiohttpTransport` keeps httpx (and so the SDKs: their retries, errors, timeouts
and stream parsing) and hands each request to one ``aiohttp.ClientSession``.

The SDKs ship the same idea (``DefaultAioHttpClient``, from the ``httpx-aiohttp``
package), but it needs aiohttp 3.10 or later and Red 3.5 pins aiohttp 3.9.5: this module
is written for aiohttp 3.8 and later.

What it keeps of httpx's transport:

- **Timeouts.** The request's ``timeout`` extension (what the SDK sets from its
  ``timeout``): ``connect`` bounds opening a connection, ``read`` each wait for bytes
  (the status line, then every chunk of a stream), ``pool`` the wait for a free
  connection (added to ``connect``: aiohttp counts both as one). aiohttp has no write
  timeout: a request body is sent within the connect and read bounds' reach only.
- **Errors** as httpx raises them, so the SDKs retry and map them as before: a timeout
  is :class:`httpx.ConnectTimeout` or :class:`httpx.ReadTimeout`, a refused or failed
  connection :class:`httpx.ConnectError`, a connection lost mid-response
  :class:`httpx.RemoteProtocolError` (httpx's "peer closed connection without sending
  complete message body") or :class:`httpx.ReadError`, a URL aiohttp cannot request
  :class:`httpx.UnsupportedProtocol`. Cancellation passes through untouched.
- **Headers as long as h11 takes them** (:data:`MAX_HEADER_BYTES`).
- **Bodies as sent**: responses are not decompressed here (httpx decodes
  ``Content-Encoding`` itself), and redirects are not followed here (httpx does, when its
  client says so).
- **TCP keep-alive** on every connection (idle 60 s, then a probe each 60 s, 5 probes:
  the Anthropic SDK's settings for its own transport), so a long wait for a reply is not
  cut by a router that drops silent connections.
- **The pool's limits**: ``max_connections`` (aiohttp's ``limit``) and
  ``keepalive_expiry`` (seconds an idle connection is kept). aiohttp keeps no count of
  idle connections; its pool does not slow down with many, so ``max_keepalive_connections``
  is not needed.

It sends no request through a proxy (an ``httpx.AsyncClient`` with a transport of its
own ignores the environment's proxies; :func:`loopflow.providers.sdk.http_client` keeps
httpx's transport when the environment names one). TLS uses httpx's default context
(certifi's certificates, as the SDKs do).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from typing import Any, Optional

import aiohttp
import httpx
from aiohttp.streams import EofStream

__all__ = ["AiohttpTransport"]


#: The longest status line or header a reply may have, in bytes: h11's bound on a reply's
#: whole header block (``h11._connection.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE``), so what httpx's own
#: transport reads is read here too (aiohttp's default is 8190 a line: a proxy's long
#: cookie or trace header failed every request).
MAX_HEADER_BYTES = 16 * 1024

#: httpx's own defaults: 100 connections at most, each kept 5 s idle.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, keepalive_expiry=5.0)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through one ``aiohttp.ClientSession``, made on the first request
    (in the event loop that sends it) and closed by :meth:`aclose`.

    ``limits`` are httpx's (``max_connections``, ``keepalive_expiry``); ``verify`` is an
    ``ssl.SSLContext`` or a bool as httpx takes it (True: httpx's default context).
    """

    def __init__(
        self,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._limits = limits
        self._verify = verify
        self._session: Optional[aiohttp.ClientSession] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        """The session of the running event loop (a new one if the loop changed: a
        session's connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            ssl_context: ssl.SSLContext | bool = self._verify
            if ssl_context is True:
                ssl_context = httpx.create_ssl_context()
            connector = _KeepAliveConnector(
                limit=self._limits.max_connections or 0,  # 0: no limit, as httpx's None
                keepalive_timeout=self._limits.keepalive_expiry or 0,
                ssl=ssl_context,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,
                max_line_size=MAX_HEADER_BYTES,
                max_field_size=MAX_HEADER_BYTES,
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response's body streams from the connection.

        Raises the httpx transport errors listed in the module's docstring.
        """
        if request.url.scheme not in ("http", "https"):  # aiohttp would try any port
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol: {request.url.scheme!r}"
            )
        session = self._session_for_loop()
        body: Any
        try:
            body = request.content or None
        except httpx.RequestNotRead:  # a streamed body: aiohttp sends it chunked
            body = request.stream
            request.headers.pop("Transfer-Encoding", None)
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=[
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ],
                data=body,
                allow_redirects=False,
                timeout=_client_timeout(request.extensions.get("timeout")),
                skip_auto_headers=_NO_AUTO_HEADERS,
            )
        except Exception as exc:
            error = _httpx_error(exc, connecting=True)
            if error is None:
                raise
            raise error from exc
        stream = _ResponseStream(response)
        stream.owner = httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=stream,
            request=request,
            extensions={
                "http_version": _http_version(response.version),
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )
        return stream.owner

    async def aclose(self) -> None:
        """Close the session and its connections (a session of another, closed event loop
        is dropped: its connections went with the loop)."""
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        with contextlib.suppress(RuntimeError):  # its loop is gone or not this one
            if self._loop is asyncio.get_running_loop():
                await session.close()


class _KeepAliveConnector(aiohttp.TCPConnector):
    """aiohttp's connector, with :data:`KEEPALIVE_OPTIONS` set on each new connection
    (aiohttp 3.9 takes no socket options; its one hook between opening a connection and
    using it is ``_wrap_create_connection``, kept from 3.8 to 3.11)."""

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for level, option, value in KEEPALIVE_OPTIONS:
                with contextlib.suppress(OSError):  # an option this platform refuses
                    sock.setsockopt(level, option, value)
        return transport, protocol


def _keepalive_options() -> list[tuple[int, int, int]]:
    """SO_KEEPALIVE with the Anthropic SDK's timings, where the platform has them."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 60), ("TCP_KEEPCNT", 5)):
        option = getattr(socket, name, None)
        if option is not None:
            options.append((socket.IPPROTO_TCP, option, value))
    return options


#: ``(level, option, value)`` set on every connection (seconds, and a count of probes).
KEEPALIVE_OPTIONS = _keepalive_options()

#: httpx sets these itself (it always sends Accept-Encoding, User-Agent and Accept);
#: aiohttp would otherwise add its own beside them.
_NO_AUTO_HEADERS = frozenset({"Accept-Encoding", "User-Agent", "Accept"})


def _http_version(version: Optional[aiohttp.HttpVersion]) -> bytes:
    """The reply's HTTP version as httpx names it (``b"HTTP/1.0"``, ``b"HTTP/1.1"``)."""
    if version is None:
        return b"HTTP/1.1"
    return b"HTTP/%d.%d" % (version.major, version.minor)


def _client_timeout(timeout: Any) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's ``{"connect", "read", "write", "pool"}`` seconds
    (None: no bound); one shared object per set of bounds (a client's requests all have
    the same: one object fewer per request in flight)."""
    if not isinstance(timeout, dict):
        return _timeouts(None, None, None)
    return _timeouts(timeout.get("connect"), timeout.get("read"), timeout.get("pool"))


@functools.lru_cache(maxsize=16)
def _timeouts(
    connect: Optional[float], read: Optional[float], pool: Optional[float]
) -> aiohttp.ClientTimeout:
    """``aiohttp.ClientTimeout`` (frozen) for these bounds, in seconds."""
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)


class _ResponseStream(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads it: chunks as they arrive.

    ``owner`` is the ``httpx.Response`` it is the body of. Closing it lets go of the
    response's body stream: httpx's client wraps the stream in one that points back at
    the response (``BoundAsyncStream``), a reference cycle that only the garbage
    collector's full collections free: with the request, the headers and the aiohttp
    response it holds, about 20 objects a request stayed in memory until the next full
    collection (``tests/integration/test_aiohttp_transport.py`` checks that none do).
    """

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.owner: Optional[httpx.Response] = None

    def __aiter__(self) -> _ResponseStream:
        # Its own iterator, not an async generator: what a stream holds while it waits
        # for its next bytes is one coroutine (:meth:`__anext__`), not a generator, its
        # asend, the event loop's weak reference to it, and aiohttp's iterator.
        return self

    async def __anext__(self) -> bytes:
        """The next bytes as they arrive (aiohttp's ``iter_any``)."""
        try:
            chunk = await self._response.content.readany()
        except EofStream:
            raise StopAsyncIteration from None
        except Exception as exc:
            error = _httpx_error(exc, connecting=False)
            if error is None:
                raise
            raise error from exc
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        # Gives the connection back to the pool when the body was read to its end, and
        # closes it otherwise (what is left unread could not be skipped safely).
        self._response.release()
        owner, self.owner = self.owner, None
        if owner is not None:  # httpx reads a closed response's body no more
            owner.stream = _CLOSED


#: The body of a closed response.
_CLOSED = httpx.ByteStream(b"")


def _parser_error(exc: aiohttp.ClientResponseError) -> str:
    """What was wrong with a reply that did not parse. aiohttp 3.9 raises the parser's
    error two causes deep, under an ``HttpProcessingError`` with no message, so its own
    text reads ``0, message=''``: the deepest cause's text, or aiohttp's if none."""
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = getattr(cause, "message", None) or str(cause)  # HttpProcessingError: no code
    detail = " ".join(str(text).split()) or exc.message or type(cause).__name__
    return f"The provider's reply did not parse as HTTP: {detail} ({exc.request_info.real_url})"


def _httpx_error(exc: Exception, connecting: bool) -> Optional[Exception]:
    """The httpx error the SDKs handle for one of aiohttp's failures, None for any other
    exception (``connecting``: the request is still being sent, a timeout may be the
    connection's)."""
    text = str(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):  # before anything was sent
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        # aiohttp raises one class for both; its message says which (3.8-3.9: "Connection
        # timeout to host ..." or "Timeout on reading data from socket").
        if connecting and text.startswith("Connection timeout"):
            return httpx.ConnectTimeout(text)
        return httpx.ReadTimeout(text)
    if isinstance(exc, asyncio.TimeoutError):  # a total bound (none is set here) or the pool's
        if connecting:
            return httpx.PoolTimeout(text or "Timed out waiting for a connection")
        return httpx.ReadTimeout(text or "Timed out reading the response")
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return httpx.RemoteProtocolError(text or "The server closed the connection")
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text)
    if isinstance(exc, aiohttp.ClientResponseError):  # a status line or headers that do not parse
        return httpx.RemoteProtocolError(_parser_error(exc))
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return httpx.ReadError(text or type(exc).__name__)
    return None
