"""AiohttpTransport under an ``httpx.AsyncClient``, against an aiohttp web server on
127.0.0.1: what httpx's own transport gives a caller (status, headers, bodies as sent,
streams as they arrive, httpx's errors for timeouts and broken connections), and which
transport the SDK clients get. The SDKs' behaviour over it (retries, errors, connection
reuse) is ``test_adapter_contract.py``'s."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from loopflow.providers.aiohttp_transport import AiohttpTransport
from loopflow.providers.sdk import POOL_LIMITS, http_client

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """``await serve(handler)``: the base URL of a server answering every path with it."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport(limits=POOL_LIMITS)) as http:
        yield http


async def test_a_reply_reads_as_httpx_reads_it(serve, client):
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen["body"] = await request.read()
        seen["headers"] = list(request.headers.items())
        response = web.json_response({"ok": True}, status=201, reason="Made It")
        response.headers.add("X-Twice", "one")
        response.headers.add("X-Twice", "two")
        return response

    base = await serve(handler)
    response = await client.post(f"{base}/v1/things?x=1", json={"a": "é"}, headers={"X-Key": "k"})
    assert response.status_code == 201
    assert response.reason_phrase == "Made It"
    assert response.json() == {"ok": True}
    assert response.headers.get_list("X-Twice") == ["one", "two"]
    assert json.loads(seen["body"]) == {"a": "é"}
    sent = seen["headers"]
    names = [name.lower() for name, _ in sent]
    # httpx's own headers, once each: aiohttp adds none of its own beside them.
    for name in ("user-agent", "accept-encoding", "accept", "host", "content-length"):
        assert names.count(name) == 1, (name, sent)
    assert dict(sent)["User-Agent"].startswith("python-httpx/")
    assert ("X-Key", "k") in sent


async def test_a_compressed_body_is_decoded_once(serve, client):
    payload = json.dumps({"text": "hello " * 200}).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(payload),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    base = await serve(handler)
    response = await client.get(f"{base}/")
    assert response.content == payload


async def test_a_stream_arrives_chunk_by_chunk(serve, client):
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        await release.wait()
        await response.write(b"data: two\n\n")
        await response.write_eof()
        return response

    base = await serve(handler)
    async with client.stream("GET", f"{base}/") as response:
        chunks = response.aiter_bytes()
        # The first event is read while the server still holds the second back.
        assert await asyncio.wait_for(chunks.__anext__(), 5) == b"data: one\n\n"
        release.set()
        assert b"".join([chunk async for chunk in chunks]) == b"data: two\n\n"


async def test_a_redirect_is_the_clients_to_follow(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/old":
            raise web.HTTPFound("/new")
        return web.Response(text="moved here")

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as plain:
        assert (await plain.get(f"{base}/old")).status_code == 302
    async with httpx.AsyncClient(transport=AiohttpTransport(), follow_redirects=True) as follows:
        response = await follows.get(f"{base}/old")
        assert (response.status_code, response.text) == (200, "moved here")


async def test_a_server_that_does_not_answer_is_a_read_timeout(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response()

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{base}/")


async def test_a_stream_that_stalls_is_a_read_timeout(serve):
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        await asyncio.sleep(30)
        return response

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.2) as http:
        async with http.stream("GET", f"{base}/") as response:
            with pytest.raises(httpx.ReadTimeout):
                async for _ in response.aiter_bytes():
                    pass


async def test_a_body_cut_short_is_a_protocol_error(serve, client):
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"only ten b")
        assert request.transport is not None
        request.transport.close()
        return response

    base = await serve(handler)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(f"{base}/")


async def test_a_refused_connection_is_a_connect_error(client):
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_a_url_aiohttp_cannot_request_is_unsupported(client):
    with pytest.raises(httpx.UnsupportedProtocol):
        await client.get("ftp://127.0.0.1/file")


async def test_closing_the_client_closes_its_connections():
    closed = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()  # until the client closes the connection
        closed.set()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        http = httpx.AsyncClient(transport=AiohttpTransport())
        assert (await http.get(f"http://127.0.0.1:{port}/")).text == "ok"
        assert not closed.is_set()  # kept alive for the next request
        await http.aclose()
        await asyncio.wait_for(closed.wait(), 5)


@pytest.mark.parametrize("sdk", [openai, anthropic])
def test_the_sdk_clients_send_through_aiohttp(sdk, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    client = http_client(sdk)
    assert isinstance(client._transport, AiohttpTransport)
    assert client.follow_redirects  # the SDKs' own default, kept


async def test_a_proxy_in_the_environment_is_used(serve, monkeypatch):
    # An owner behind a proxy: requests go through it, as with httpx's own transport.
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        seen.append(str(request.url))
        return web.Response(text="from the proxy")

    proxy_url = await serve(proxy)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    with socket.socket() as unused:  # the target: a local port nothing listens on
        unused.bind(("127.0.0.1", 0))
        target = f"http://localhost:{unused.getsockname()[1]}/v1/models"
    async with http_client(openai) as http:
        response = await http.get(target)
    assert response.text == "from the proxy"
    assert seen == [target]


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_response_read_and_closed_leaves_no_reference_cycle(serve, client, streamed):
    # httpx's client wraps a response's body in a stream that points back at the response:
    # unless the transport lets go of it on close, every request stays in memory (with
    # its aiohttp response) until the garbage collector's next full collection.
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="data: one\n\n", content_type="text/event-stream")

    base = await serve(handler)
    await client.get(f"{base}/")  # the connection and the pool are made
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        if streamed:
            async with client.stream("GET", f"{base}/") as response:
                assert [chunk async for chunk in response.aiter_bytes()] == [b"data: one\n\n"]
        else:
            response = await client.get(f"{base}/")
            assert response.text == "data: one\n\n"
        del response
        gc.collect()
        cycles = [type(o).__qualname__ for o in gc.garbage if isinstance(o, httpx.Response)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cycles == []


@pytest.fixture
async def raw_reply() -> AsyncIterator[Callable[[bytes], Awaitable[str]]]:
    """``await raw_reply(data)``: the base URL of a server on 127.0.0.1 that answers every
    request with ``data`` as it is (a status line and headers a web framework would not
    write), then closes the connection."""
    servers: list[asyncio.Server] = []

    async def start(data: bytes) -> str:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(data)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_reply_that_does_not_parse_says_why(raw_reply, client):
    # aiohttp's parser error is two causes deep; its ClientResponseError reads "0, message=''".
    base = await raw_reply(b"NOT HTTP AT ALL\r\n\r\n")
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await client.get(f"{base}/")
    said = str(caught.value)
    assert "message=''" not in said
    assert "did not parse" in said and "Expected HTTP/" in said, said


async def test_a_header_as_long_as_httpx_takes_is_read(raw_reply, client):
    # httpx's own transport (h11) takes a header block up to 16 KiB; aiohttp's default
    # refuses any header line over 8190 bytes (a long cookie or trace header from a proxy).
    long_value = b"a" * 12_000
    base = await raw_reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Trace: " + long_value + b"\r\n\r\nok"
    )
    response = await client.get(f"{base}/")
    assert response.status_code == 200
    assert response.headers["X-Trace"] == long_value.decode()
    assert response.text == "ok"


async def test_a_reply_in_http_1_0_says_so(raw_reply, client):
    base = await raw_reply(b"HTTP/1.0 200 OK\r\n\r\nhello")
    response = await client.get(f"{base}/")
    assert response.text == "hello"
    assert response.http_version == "HTTP/1.0"
